// Charts of a cluster's backup report (Chart.js 4, vendored): the size read and the duration of
// every backup of the last 90 days, one series per mode, a failed or unusable backup drawn as
// a hollow point. The runs come with the page (json_script "report-runs"); the x axis is linear
// in epoch milliseconds with our own date labels (no date adapter), in the console's zone.
(function () {
  "use strict";
  const COLORS = { full: "#1f5fad", incr: "#1d7a46", incremental: "#1d7a46", diff: "#93610b", archive: "#6b3fa0" };
  const UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

  function bytes(v) {
    let size = Math.abs(v), i = 0;
    while (size >= 1024 && i < UNITS.length - 1) { size /= 1024; i++; }
    return (i === 0 ? size.toFixed(0) : size.toFixed(1)) + " " + UNITS[i];
  }

  function seconds(v) {
    if (v < 120) return v.toFixed(0) + " s";
    if (v < 7200) return Math.round(v / 60) + " min";
    return (v / 3600).toFixed(1) + " h";
  }

  function zoneOf(root) {
    const zone = root.dataset.timeZone || "UTC";
    try { new Intl.DateTimeFormat("en-GB", { timeZone: zone }); return zone; } catch (e) { return "UTC"; }
  }

  function draw(canvas, runs, field, format, zone) {
    const day = new Intl.DateTimeFormat("en-GB", { timeZone: zone, month: "2-digit", day: "2-digit" });
    const full = new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
    const modes = [...new Set(runs.map((r) => r.mode))];
    const datasets = modes.map((mode) => {
      const mine = runs.filter((r) => r.mode === mode && r[field] !== null);
      const color = COLORS[mode] || "#5c6670";
      return {
        label: mode, borderColor: color, backgroundColor: color, borderWidth: 1, tension: 0,
        pointRadius: mine.map((r) => (r.status === "ok" ? 2 : 4)),
        pointStyle: mine.map((r) => (r.status === "ok" ? "circle" : "crossRot")),
        showLine: true, data: mine.map((r) => ({ x: r.t, y: r[field], run: r })),
      };
    });
    return new Chart(canvas, {
      type: "scatter",
      data: { datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: {
          x: { type: "linear", ticks: { maxTicksLimit: 8, maxRotation: 0, callback: (v) => day.format(new Date(v)) } },
          y: { beginAtZero: true, ticks: { maxTicksLimit: 6, callback: (v) => format(v) } },
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: (item) => {
                const r = item.raw.run;
                return `${r.mode} ${r.id}: ${format(item.raw.y)} (${r.status === "ok" ? "usable" : r.status})`;
              },
              title: (items) => (items.length ? full.format(new Date(items[0].raw.x)) : ""),
            },
          },
        },
      },
    });
  }

  // An environment's page: one bar per day and series (stacked when `stacked`).
  function drawDays(canvas, days, series, format, zone, stacked) {
    const day = new Intl.DateTimeFormat("en-GB", { timeZone: zone, month: "2-digit", day: "2-digit" });
    const full = new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" });
    return new Chart(canvas, {
      type: "bar",
      data: {
        datasets: series.map((s) => ({
          label: s.label, backgroundColor: s.color, borderWidth: 0, barPercentage: 1, categoryPercentage: 0.9,
          data: days.map((d) => ({ x: d.t, y: d[s.field] })),
        })),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: { xAxisKey: "x", yAxisKey: "y" },
        scales: {
          x: { type: "linear", stacked: stacked, offset: true, ticks: { maxTicksLimit: 8, maxRotation: 0, callback: (v) => day.format(new Date(v)) } },
          y: { beginAtZero: true, stacked: stacked, ticks: { maxTicksLimit: 6, precision: format === count ? 0 : undefined, callback: (v) => format(v) } },
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? full.format(new Date(items[0].raw.x)) : ""),
              label: (item) => `${item.dataset.label}: ${format(item.raw.y)}`,
            },
          },
        },
      },
    });
  }

  function count(v) { return String(Math.round(v)); }

  function setup() {
    if (typeof Chart === "undefined") return;
    const root = document.getElementById("report-charts");
    const data = document.getElementById("report-runs");
    if (root && data) {
      const runs = JSON.parse(data.textContent);
      const zone = zoneOf(root);
      draw(document.getElementById("chart-sizes"), runs, "total", bytes, zone);
      draw(document.getElementById("chart-durations"), runs, "seconds", seconds, zone);
      root.dataset.drawn = String(runs.length);  // for tests: the charts are drawn
    }
    const dayRoot = document.getElementById("report-days");
    const dayData = document.getElementById("report-day-series");
    if (dayRoot && dayData) {
      const days = JSON.parse(dayData.textContent);
      const zone = zoneOf(dayRoot);
      drawDays(document.getElementById("chart-volume"), days, [
        { label: "read", field: "read", color: "#1f5fad" },
        { label: "written", field: "written", color: "#0f7c8c" },
      ], bytes, zone, false);
      drawDays(document.getElementById("chart-time"), days, [
        { label: "backup time", field: "seconds", color: "#6b3fa0" },
      ], seconds, zone, false);
      drawDays(document.getElementById("chart-outcome"), days, [
        { label: "usable", field: "ok", color: "#1d7a46" },
        { label: "failed or not usable", field: "failed", color: "#b42318" },
      ], count, zone, true);
      dayRoot.dataset.drawn = String(days.length);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
