// Charts of the cluster and node pages (Chart.js 4, vendored). The page says which series each
// chart draws (json_script "chart-specs"); each series is one request to the clusters:series
// endpoint, already downsampled by the server. The x axis is linear in epoch milliseconds
// with our own labels (no date adapter), in the console's time zone. A time without samples
// (longer than two buckets or 2.5 collection intervals) is drawn as a gap.
(function () {
  "use strict";
  const COLORS = ["#1f5fad", "#1d7a46", "#b42318", "#93610b", "#6b3fa0", "#0f7c8c", "#5c6670"];
  const UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

  function bytes(v) {
    let size = Math.abs(v), i = 0;
    while (size >= 1024 && i < UNITS.length - 1) { size /= 1024; i++; }
    return (v < 0 ? "-" : "") + (i === 0 ? size.toFixed(0) : size.toFixed(1)) + " " + UNITS[i];
  }

  function seconds(v) {
    if (v < 10) return v.toFixed(1) + " s";
    if (v < 120) return v.toFixed(0) + " s";
    if (v < 7200) return Math.round(v / 60) + " min";
    return (v / 3600).toFixed(1) + " h";
  }

  function formatValue(unit, v) {
    if (v === null || v === undefined) return "—";
    if (unit === "bytes") return bytes(v);
    if (unit === "s") return seconds(v);
    if (unit === "%") return (Math.round(v * 10) / 10) + " %";
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }

  function checkedZone(timeZone) {
    try { new Intl.DateTimeFormat("en-GB", { timeZone: timeZone }); return timeZone; } catch (e) { return "UTC"; }
  }

  function timeFormats(tz) {
    const make = (o) => new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: tz, hour12: false }, o));
    return {
      time: make({ hour: "2-digit", minute: "2-digit" }),
      day: make({ month: "2-digit", day: "2-digit" }),
      dayTime: make({ month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }),
      full: make({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }),
    };
  }

  const MIN = 60e3, HOUR = 3600e3, DAY = 86400e3;
  const TICK_STEPS = [MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR,
    6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY];

  // The time zone's offset from UTC at time t, in ms (what it adds to UTC).
  function tzOffset(timeZone, t) {
    const parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(t)).forEach((p) => { parts[p.type] = p.value; });
    const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    return Math.round((asUtc - t) / MIN) * MIN;
  }

  // Ticks on round local times (every 10 min, hour, 6 h, day...), at most 7 of them.
  function roundTicks(min, max, timeZone) {
    const step = TICK_STEPS.find((s) => (max - min) / s <= 6) || TICK_STEPS[TICK_STEPS.length - 1];
    const off = tzOffset(timeZone, max);
    const ticks = [];
    for (let t = Math.ceil((min + off) / step) * step - off; t <= max; t += step) ticks.push({ value: t });
    return ticks;
  }

  // A null where no point came for longer than two buckets or 2.5 collection intervals.
  function withGaps(points, stepMs, intervalMs) {
    const data = [];
    const gap = Math.max(2 * stepMs, 2.5 * intervalMs);
    let last = null;
    for (const [t, v] of points) {
      if (last !== null && t - last > gap) data.push({ x: last + stepMs, y: null });
      data.push({ x: t, y: v });
      last = t;
    }
    return data;
  }

  function setup(root) {
    const specsNode = document.getElementById("chart-specs");
    if (!specsNode || typeof Chart === "undefined") return;
    const specs = JSON.parse(specsNode.textContent);
    const zone = checkedZone(root.dataset.timeZone || "UTC");
    const fmt = timeFormats(zone);
    const url = root.dataset.seriesUrl;
    let span = 0;
    const charts = specs.map(function (spec) {
      const article = document.getElementById("chart-" + spec.key);
      const canvas = article.querySelector("canvas");
      const chart = new Chart(canvas, {
        type: "line",
        data: {
          datasets: spec.series.map((s, i) => ({
            label: s.label, data: [], borderColor: COLORS[i % COLORS.length],
            backgroundColor: COLORS[i % COLORS.length], borderWidth: 1.5, pointRadius: 0,
            pointHitRadius: 6, tension: 0, spanGaps: false,
          })),
        },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
          normalized: true, interaction: { mode: "nearest", axis: "x", intersect: false },
          scales: {
            x: {
              type: "linear",
              afterBuildTicks: (axis) => { axis.ticks = roundTicks(axis.min, axis.max, zone); },
              ticks: {
                maxTicksLimit: 7, maxRotation: 0, font: { size: 11 },
                callback: (v) => (span > 2 * 86400e3 ? fmt.day : span > 86400e3 ? fmt.dayTime : fmt.time).format(new Date(v)),
              },
              grid: { color: "#eef0f2" },
            },
            y: {
              beginAtZero: true,
              ticks: {
                maxTicksLimit: 6, font: { size: 11 }, callback: (v) => formatValue(spec.unit, v),
                precision: spec.unit === "bytes" || spec.unit === "count" ? 0 : undefined,
              },
              grid: { color: "#eef0f2" },
            },
          },
          plugins: {
            legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 2, font: { size: 11 } } },
            tooltip: {
              callbacks: {
                title: (items) => (items.length ? fmt.full.format(new Date(items[0].parsed.x)) : ""),
                label: (item) => item.dataset.label + ": " + formatValue(spec.unit, item.parsed.y),
              },
            },
          },
        },
      });
      return { spec: spec, chart: chart, note: article.querySelector(".chart-note"), canvas: canvas };
    });

    function load(range) {
      charts.forEach(function (c) {
        const requests = c.spec.series.map(function (s) {
          const q = new URLSearchParams({ node: s.node, metric: s.metric, range: range });
          return fetch(url + "?" + q.toString(), { credentials: "same-origin" }).then(function (r) {
            if (!r.ok) throw new Error("HTTP " + r.status);
            return r.json();
          });
        });
        Promise.all(requests).then(function (answers) {
          let count = 0;
          answers.forEach(function (a, i) {
            c.chart.data.datasets[i].data = withGaps(a.points, a.step_s * 1000, (a.interval_s || 30) * 1000);
            count += a.points.length;
          });
          if (answers.length) {
            span = answers[0].to - answers[0].from;
            c.chart.options.scales.x.min = answers[0].from;
            c.chart.options.scales.x.max = answers[0].to;
          }
          c.chart.update();
          c.canvas.dataset.points = String(count);
          c.note.hidden = count > 0;
          c.note.textContent = count ? "" : "No samples in this range yet.";
        }).catch(function (e) {
          c.note.hidden = false;
          c.note.textContent = "Could not load this chart: " + e.message;
        });
      });
    }

    root.querySelectorAll("[data-range]").forEach(function (button) {
      button.addEventListener("click", function () {
        root.querySelectorAll("[data-range]").forEach(function (b) {
          b.classList.toggle("chosen", b === button);
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
        load(button.dataset.range);
      });
    });
    const chosen = root.querySelector("[data-range].chosen");
    load(chosen ? chosen.dataset.range : "6h");
  }

  document.addEventListener("DOMContentLoaded", function () {
    const root = document.querySelector("[data-charts]");
    if (root) setup(root);
  });
})();
