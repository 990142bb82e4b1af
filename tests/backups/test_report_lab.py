"""The must-show of the report (issue 7): a scheduled full backup then a scheduled incremental
of the lab's db1, taken by pgBackRest (each firing queued as beat's task does,
backups.schedule.fire_policy, then run as its job) and verified, appear in the report: its PDF,
downloaded by a manager, opens (parsed back with pypdf) and lists the lab cluster with the
incremental as its last usable backup, 100 % success over both and retention met; the CSV and
the data say the same."""

import csv
import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from backups import report, schedule, tasks
from backups.models import BackupPolicy
from console import jobs
from tests.backups.test_pgbackrest import catalog, db1, site  # noqa: F401 (fixtures)


@pytest.mark.django_db(transaction=True)
def test_scheduled_full_then_incremental_pgbackrest_backups_are_listed_in_the_report_pdf(
    db1,  # noqa: F811 (the fixture imported above)
    catalog,  # noqa: F811
    dba,
    manager,
    client,
):
    weekly = BackupPolicy.objects.create(catalog=catalog, name="weekly", schedule="0 1 * * 0",
                                         mode="full", retention_full=1)  # fmt: skip
    daily = BackupPolicy.objects.create(catalog=catalog, name="daily", schedule="0 2 * * *",
                                        mode="incr")  # fmt: skip
    runs = []
    for policy in (weekly, daily):
        queued = schedule.fire_policy(policy.pk)  # what beat runs at the policy's cron time
        assert jobs.run_job(queued.job_id, tasks.run_backup.body) == "succeeded"
        queued.refresh_from_db()
        runs.append(queued)
    full, incr = runs
    assert [(r.mode, r.status, r.usable) for r in runs] == [("full", "ok", True),
                                                            ("incr", "ok", True)]  # fmt: skip
    cluster = db1.cluster

    client.force_login(manager)
    response = client.get(reverse("backups:report_pdf"))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert "Backup report" in reader.pages[0].extract_text()
    text = "\n".join(page.extract_text() for page in reader.pages[1:])
    lines = [line for line in text.splitlines() if cluster.name in line]
    assert lines, f"{cluster.name} is not in the PDF:\n{text}"
    row = " ".join(text.splitlines()[text.splitlines().index(lines[0]) :][:14])
    compact = row.replace(" ", "")  # a long label wraps inside its cell
    assert f"incr{incr.backup_id}" in compact, text
    assert "100%100%100%" in compact and "met" in row, text

    built = report.build(manager)
    [lab] = [r for r in built.clusters if r.pk == cluster.pk]
    assert lab.last_usable.backup_id == incr.backup_id
    assert (lab.rates[7].ok, lab.rates[7].finished, lab.policies) == (2, 2, 2)
    assert lab.retention.status == report.MET and lab.retention.fulls_kept == 1
    assert full.backup_id in incr.backup_id  # the incremental is based on that full
    exported = client.get(reverse("backups:report_csv")).content.decode()
    [csv_row] = [r for r in csv.DictReader(io.StringIO(exported)) if r["cluster"] == cluster.name]
    assert (csv_row["last_usable_backup"], csv_row["last_usable_mode"]) == (incr.backup_id, "incr")
    assert int(csv_row["last_usable_total_bytes"]) == incr.total_bytes > 0
    assert csv_row["success_percent_7d"] == "100.0" and csv_row["retention"] == "met"
