"""The evidence of one offboarding, for auditors: what was done to which account, where, when,
by whom, and how each lock was verified. As CSV (cells guarded against spreadsheet formulas, as
the audit export) and as PDF (reportlab: pure wheels, no system library to install, and a
well-kept toolkit used for reports for two decades). Pure: it reads the run and its steps."""

import csv
import io
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from console.views import FORMULA_PREFIXES
from users.models import OffboardingRun

METHOD = {
    "postgresql": (
        "PostgreSQL: ALTER ROLE ... NOLOGIN on the primary (objects, grants and password kept); "
        "verified by reading pg_roles.rolcanlogin and pg_stat_activity back, once the lock is "
        "committed, on every server of the cluster (on the primary, and on each standby once "
        "it has replayed the lock); sessions a read finds are ended with pg_terminate_backend "
        "on that server and the read is made again."
    ),
    "mariadb": (
        "MariaDB/MySQL: ALTER USER ... ACCOUNT LOCK (objects, grants and password kept); "
        "verified by reading the account_locked flag of mysql.global_priv and the process list "
        "back once the lock is committed; sessions the read finds are ended with KILL "
        "CONNECTION and the read is made again."
    ),
}
NOT_A_LOGIN = (
    "The verification is not a login attempt: the console does not know people's passwords, "
    "and both engines check the lock only after the password (a wrong password is refused "
    "the same way whether the account is locked or not), so such an attempt would prove "
    "nothing."
)
FIELDS = (
    "person", "name", "offboarding", "state", "requested_by", "requested_at", "source",
    "approved_by", "approved_at", "completed_at", "cluster", "engine", "account", "step",
    "result", "locked_before", "locked_at", "sessions_ended", "verified_at", "verified_on",
    "verification", "error", "attempts", "unlocked_at",
)  # fmt: skip
_FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)


def rows(run: OffboardingRun) -> list[dict]:
    """One row per account of the run: personal accounts locked, then those to hand over."""
    person = run.person
    head = {
        "person": person.uid, "name": person.name, "offboarding": run.pk,
        "state": run.get_state_display(), "requested_by": run.requested_by_name or run.source,
        "requested_at": run.requested_at, "source": run.source,
        "approved_by": run.approved_by_name, "approved_at": run.approved_at,
        "completed_at": run.completed_at,
    }  # fmt: skip
    return [
        {
            **head,
            "cluster": s.cluster_name,
            "engine": s.engine,
            "account": s.login,
            "step": s.get_kind_display(),
            "result": s.result,
            "locked_before": s.locked_before,
            "locked_at": s.locked_at,
            "sessions_ended": s.sessions_ended,
            "verified_at": s.verified_at,
            "verified_on": s.servers,
            "verification": s.evidence,
            "error": s.error,
            "attempts": s.attempts,
            "unlocked_at": s.unlocked_at,
        }  # fmt: skip
        for s in run.steps.order_by("kind", "cluster_name", "login")
    ]


def _cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_PREFIXES) else text


def as_csv(run: OffboardingRun) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for row in rows(run):
        writer.writerow([_cell(row[name]) for name in FIELDS])
    return buffer.getvalue()


def _font() -> str:
    """A font with the accents and scripts of people's names where the system has one."""
    for path in _FONT_FILES:
        if Path(path).exists():
            if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("DejaVuSans", path))
            return "DejaVuSans"
    return "Helvetica"


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def as_pdf(run: OffboardingRun, *, generated_by: str, generated_at) -> bytes:
    font = _font()
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = font
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    person = run.person

    def p(text, style=small) -> Paragraph:  # text escaped: names come from servers and LDAP
        from xml.sax.saxutils import escape

        return Paragraph(escape(str(text)), style)

    story = [
        p(f"Offboarding evidence: {person.uid} ({person.name or '-'})", styles["Title"]),
        p(
            f"Offboarding #{run.pk}: {run.get_state_display()}. Requested by "
            f"{run.requested_by_name or run.source} at {_when(run.requested_at)}"
            + (
                f"; approved by {run.approved_by_name} at {_when(run.approved_at)}"
                if run.approved_by_name
                else ""
            )
            + f"; completed {_when(run.completed_at)}; {run.attempts} attempt(s)."
            + (
                f" Undone by {run.undone_by_name} at {_when(run.undone_at)}."
                if run.undone_at
                else ""
            ),
            styles["BodyText"],
        ),  # fmt: skip
        p(f"Generated by {generated_by} at {_when(generated_at)}.", styles["BodyText"]),
        Spacer(1, 4 * mm),
    ]
    if run.reason and run.state == OffboardingRun.State.INCOMPLETE:
        story.append(p(f"Incomplete: {run.reason}", styles["BodyText"]))
    header = ["Cluster", "Account", "Step", "Result", "Locked at", "Sessions ended",
              "Verified at", "Verification"]  # fmt: skip
    data = [[p(h) for h in header]]
    for row in rows(run):
        data.append([p(row["cluster"]), p(row["account"]), p(row["step"]),
                     p(row["result"] + (" (locked before)" if row["locked_before"] else "")),
                     p(_when(row["locked_at"])), p(row["sessions_ended"]),
                     p(_when(row["verified_at"])),
                     p(row["verification"] or row["error"] or "-")])  # fmt: skip
    widths = [28 * mm, 35 * mm, 18 * mm, 22 * mm, 32 * mm, 16 * mm, 32 * mm, 90 * mm]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf0")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))  # fmt: skip
    story += [table, Spacer(1, 4 * mm), p("How each lock was verified", styles["Heading3"])]
    engines = sorted({row["engine"] for row in rows(run)})
    story += [p(METHOD[e], styles["BodyText"]) for e in engines if e in METHOD]
    story.append(p(NOT_A_LOGIN, styles["BodyText"]))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=landscape(A4), title=f"Offboarding {person.uid}",
                            leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                            bottomMargin=12 * mm)  # fmt: skip
    doc.build(story)
    return buffer.getvalue()
