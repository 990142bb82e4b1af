"""The must-show of the report (issue 7): a real full backup of the lab's db1 taken by
pgBackRest (queued by start_backup and run as its job, as a schedule does), then the report's
PDF, downloaded by a manager, opens (parsed back with pypdf) and lists the lab cluster with
that backup: its label, mode, its size and a 100 % success rate; the CSV says the same."""

import csv
import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from backups import report
from backups.models import BackupPolicy
from tests.backups.test_pgbackrest import backup_now, catalog, db1, site  # noqa: F401 (fixtures)


@pytest.mark.django_db(transaction=True)
def test_the_pdf_lists_the_lab_cluster_with_its_real_pgbackrest_backup(
    db1,  # noqa: F811 (the fixture imported above)
    catalog,  # noqa: F811
    dba,
    manager,
    client,
):
    BackupPolicy.objects.create(catalog=catalog, name="weekly", schedule="0 1 * * 0",
                                mode="full", retention_full=1)  # fmt: skip
    full = backup_now(catalog, "full", dba)
    assert (full.status, full.usable, full.mode) == ("ok", True, "full")
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
    assert f"full {full.backup_id}" in row, text
    assert "100 % 100 % 100 %" in row and "met" in row, text

    built = report.build(manager)
    [lab] = [r for r in built.clusters if r.pk == cluster.pk]
    assert lab.last_usable.backup_id == full.backup_id and lab.rates[7].percent == 100.0
    assert lab.retention.status == report.MET and lab.retention.fulls_kept == 1
    exported = client.get(reverse("backups:report_csv")).content.decode()
    [csv_row] = [r for r in csv.DictReader(io.StringIO(exported)) if r["cluster"] == cluster.name]
    assert csv_row["last_usable_backup"] == full.backup_id
    assert int(csv_row["last_usable_total_bytes"]) == full.total_bytes > 10_000_000
