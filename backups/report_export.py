"""The backup report as CSV (one row per cluster; cells guarded against spreadsheet formulas, as
the other exports) and as PDF (reportlab, as users/evidence.py: a cover with the period and
the generation time, the per-environment summary, the per-cluster table). Pure: it reads a
backups.report.Report and writes bytes."""

from __future__ import annotations

import csv
import io
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from backups import report as r
from clusters.templatetags.dashboard_extras import bytes_human
from console.views import FORMULA_PREFIXES
from users.evidence import _font

FIELDS = (
    "cluster", "environment", "kind", "policies", "last_usable_backup", "last_usable_mode",
    "last_usable_started", "last_usable_ended", "age_hours", "last_usable_duration_s",
    "last_usable_total_bytes", "last_usable_written_bytes",
    *(f"{what}_{d}d" for d in r.WINDOWS for what in ("success_percent", "usable", "finished")),
    *(f"missed_{d}d" for d in r.WINDOWS), "retention", "retention_detail", "full_backups_kept",
    "full_backups_wanted", "oldest_usable_days", "days_wanted", "last_test_restore",
    "test_restore_duration_s", "test_restore_check_ok",
    "restorable_to", "rpo_seconds",
)  # fmt: skip


def _seconds(value) -> float | None:
    return round(value.total_seconds(), 1) if value is not None else None


def csv_row(row: r.ClusterReport) -> dict:
    last, test, ret = row.last_usable, row.test_restore, row.retention
    values = {
        "cluster": row.name, "environment": row.environment, "kind": row.kind,
        "policies": row.policies,
        "last_usable_backup": last.backup_id if last else None,
        "last_usable_mode": last.mode if last else None,
        "last_usable_started": last.started if last else None,
        "last_usable_ended": last.ended if last else None,
        "age_hours": row.age_hours,
        "last_usable_duration_s": _seconds(last.duration) if last else None,
        "last_usable_total_bytes": last.total_bytes if last else None,
        "last_usable_written_bytes": last.written_bytes if last else None,
        "retention": ret.status, "retention_detail": "; ".join(ret.reasons),
        "full_backups_kept": ret.fulls_kept, "full_backups_wanted": ret.fulls_wanted,
        "oldest_usable_days": ret.oldest_days, "days_wanted": ret.days_wanted,
        "last_test_restore": test.ended if test else None,
        "test_restore_duration_s": _seconds(test.duration) if test else None,
        "test_restore_check_ok": test.check_ok if test else None,
        "restorable_to": row.restorable_to, "rpo_seconds": _seconds(row.rpo),
    }  # fmt: skip
    for d in r.WINDOWS:
        rate = row.rates[d]
        values[f"success_percent_{d}d"] = rate.percent
        values[f"usable_{d}d"], values[f"finished_{d}d"] = rate.ok, rate.finished
        values[f"missed_{d}d"] = row.missed[d]
    return values


def _cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_PREFIXES) else text


def as_csv(report: r.Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for row in report.clusters:
        values = csv_row(row)
        writer.writerow([_cell(values[n]) for n in FIELDS])
    return buffer.getvalue()


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def summary_table(report: r.Report) -> tuple[list[str], list[list[str]]]:
    """The per-environment summary as text cells (the page and the PDF show the same)."""
    head = ["Environment", "Clusters", "With a usable backup", "Backed up in the last day",
            *(f"Success {d} d" for d in r.WINDOWS), "Missed 7 d", "Missed 30 d",
            "Retention met / not met", "Test restored in 30 d", "Oldest last backup"]  # fmt: skip
    rows = []
    for s in report.summaries:
        cells = [s.name, str(s.clusters), str(s.with_usable), str(s.fresh),
                 *(f"{r.percent(s.rates[d])} ({s.rates[d].ok}/{s.rates[d].finished})"
                   for d in r.WINDOWS),
                 str(s.missed[7]), str(s.missed[30]),
                 f"{s.retention_met} / {s.retention_not_met}", str(s.tested),
                 r.human_age(s.oldest_age)]  # fmt: skip
        rows.append(cells)
    return head, rows


def cluster_table(report: r.Report) -> tuple[list[str], list[list[str]]]:
    head = ["Cluster", "Environment", "Last usable backup", "Age",
            *(f"{d} d" for d in r.WINDOWS), "Missed 30 d", "Retention", "Last test restore",
            "RPO"]  # fmt: skip
    rows = []
    for row in report.clusters:
        last, test = row.last_usable, row.test_restore
        cells = [
            row.name, row.environment,
            f"{_when(last.finished)} {last.mode} {last.backup_id}, "
            f"{bytes_human(last.total_bytes)}, {r.human_duration(last.duration)}"
            if last
            else "none",
            r.human_age(row.age), *(r.percent(row.rates[d]) for d in r.WINDOWS),
            str(row.missed[30]),
        ]  # fmt: skip
        cells.append(row.retention.status + (
            ": " + "; ".join(row.retention.reasons) if row.retention.reasons else ""))  # fmt: skip
        cells.append(
            f"{_when(test.ended)}, took {r.human_duration(test.duration)}"
            + ("" if test.check_ok in (True, None) else ", check failed")
            if test
            else "never"
        )
        cells.append(r.human_age(row.rpo))
        rows.append(cells)
    return head, rows


def as_pdf(report: r.Report, *, generated_by: str) -> bytes:
    font = _font()
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = font
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    body = styles["BodyText"]

    def p(text, style=small) -> Paragraph:  # escaped: names come from people and servers
        return Paragraph(escape(str(text)), style)

    scope = f"environment {report.environment}" if report.environment else "every environment"
    story = [
        Spacer(1, 30 * mm),
        p("Backup report", styles["Title"]),
        p(f"Clusters of {scope}: {len(report.clusters)}.", body),
        p(f"Period: the last {report.period}.", body),
        p(f"Generated at {_when(report.generated_at)} "
          f"({timezone.get_current_timezone_name()}) by {generated_by}.", body),  # fmt: skip
        Spacer(1, 6 * mm),
        p("A backup is usable when its engine validated it (pg_rman OK, pgBackRest verify). "
          "Success rates count the backups started in each window that have an outcome: "
          "usable, or failed, corrupt or never validated. Retention compares what each "
          "catalog keeps with what its enabled policies ask (full backups kept, days of "
          "history). A test restore is a restore of a backup into a scratch instance, "
          "checked with a query; its duration is a measured restore time.", body),
        PageBreak(),
        p("Per environment", styles["Heading2"]),
    ]  # fmt: skip
    head, rows = summary_table(report)
    story += [_table(head, rows, p, {0: 2}), Spacer(1, 6 * mm),
              p("Per cluster", styles["Heading2"])]  # fmt: skip
    head, rows = cluster_table(report)
    wide = {0: 1.6, 2: 3, head.index("Retention"): 3, head.index("Last test restore"): 2}
    story.append(_table(head, rows, p, wide) if rows else p("No cluster.", body))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=landscape(A4), title="Backup report",
                            leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                            bottomMargin=12 * mm)  # fmt: skip
    doc.build(story)
    return buffer.getvalue()


_WIDTH = landscape(A4)[0] - 24 * mm


def _table(head: list[str], rows: list[list[str]], p, weights: dict[int, float]) -> Table:
    """Columns share the page width by weight (1 unless given)."""
    shares = [weights.get(i, 1.0) for i in range(len(head))]
    widths = [_WIDTH * share / sum(shares) for share in shares]
    data = [[p(h) for h in head], *([p(c) for c in row] for row in rows)]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf0")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))  # fmt: skip
    return table
