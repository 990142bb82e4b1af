"""The manager's backup report from seeded rows: success rates per window, the last usable
backup and its age, missed schedules, retention compliance, the last test restore, the
per-environment summary, a constant number of queries, the pages, CSV and PDF, and who may
read them. (The PDF listing a real pgBackRest backup of the lab: test_report_lab.py; the
weekly mail through a real SMTP server: test_report_mail.py.)"""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from backups import report, report_export
from backups.models import (
    ArchiveCheck,
    BackupCatalog,
    BackupPolicy,
    BackupRun,
    MissedBackup,
    RestoreRun,
)
from clusters.models import Cluster, Environment, Node

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def ago(**kwargs):
    return NOW - timedelta(**kwargs)


def make_cluster(name: str, environment: str = "production") -> Cluster:
    env, _ = Environment.objects.get_or_create(name=environment)
    cluster = Cluster.objects.create(name=name, kind="postgresql", environment=env)
    Node.objects.create(cluster=cluster, name=f"{name}-db1", service="postgresql",
                        role="primary", address="192.0.2.1", known_hosts="")  # fmt: skip
    return cluster


def make_catalog(cluster, name="main", engine="pgbackrest") -> BackupCatalog:
    extra = {"stanza": cluster.name} if engine == "pgbackrest" else {"arclog_path": "/arc"}
    return BackupCatalog.objects.create(cluster=cluster, name=name, engine=engine,
                                        path=f"/backup/{cluster.name}/{name}", **extra)  # fmt: skip


_ids = iter(range(1, 1_000_000))


def run(catalog, started, status="ok", mode="full", took=timedelta(minutes=5), **fields):
    return BackupRun.objects.create(
        catalog=catalog, cluster=catalog.cluster, mode=mode, status=status, started=started,
        ended=started + took, duration=took, backup_id=f"b{next(_ids)}",
        total_bytes=fields.pop("total_bytes", 1_000_000), **fields,
    )  # fmt: skip


def build(user, **kwargs) -> report.Report:
    return report.build(user, now=NOW, **kwargs)


def row_of(built: report.Report, name: str) -> report.ClusterReport:
    [row] = [r for r in built.clusters if r.name == name]
    return row


# --- the numbers --------------------------------------------------------------------------------


def test_success_rates_count_usable_among_finished_runs_per_window(manager):
    catalog = make_catalog(make_cluster("pg-rates"))
    run(catalog, ago(days=1))  # ok
    run(catalog, ago(days=2), status="failed")
    run(catalog, ago(days=3), status="done")  # never validated: not a success
    run(catalog, ago(hours=1), status="running", found_outside_console=True)  # no outcome yet
    run(catalog, ago(days=4), status="pending")
    run(catalog, ago(days=20), status="corrupt")
    run(catalog, ago(days=25))
    run(catalog, ago(days=60), status="deleted")  # removed by retention: outcome unknown
    run(catalog, ago(days=61), status="error")
    run(catalog, ago(days=80))
    run(catalog, ago(days=100))  # outside every window
    row = row_of(build(manager), "pg-rates")
    assert {d: (row.rates[d].ok, row.rates[d].finished) for d in report.WINDOWS} == {
        7: (1, 3), 30: (2, 5), 90: (3, 7)}  # fmt: skip
    assert [row.rates[d].percent for d in report.WINDOWS] == [33.3, 40.0, 42.9]


def test_the_last_usable_backup_is_the_newest_ok_one_and_its_age_counts_from_its_end(manager):
    catalog = make_catalog(make_cluster("pg-last"))
    run(catalog, ago(days=3), mode="full")
    usable = run(catalog, ago(hours=10), mode="incr", took=timedelta(minutes=30))
    run(catalog, ago(hours=2), status="failed")
    run(catalog, ago(hours=1), status="corrupt")
    make_cluster("pg-never")
    built = build(manager)
    row = row_of(built, "pg-last")
    assert (row.last_usable.pk, row.last_usable.mode) == (usable.pk, "incr")
    assert row.age == timedelta(hours=9, minutes=30) and row.age_hours == 9.5
    assert row.age_text == "9.5 h"
    never = row_of(built, "pg-never")
    assert never.last_usable is None and never.age is None and never.rates[90].percent is None


def test_missed_schedules_are_counted_per_window_and_shown_in_the_page_and_exports(manager, client):
    cluster = make_cluster("pg-missed")
    catalog = make_catalog(cluster)
    policy = BackupPolicy.objects.create(catalog=catalog, name="daily", schedule="0 2 * * *",
                                         mode="incr")  # fmt: skip
    for days in (1, 5, 10, 45, 89, 120):
        MissedBackup.objects.create(policy=policy, policy_name="daily", cluster=cluster,
                                    due_at=ago(days=days))  # fmt: skip
    other = make_cluster("pg-other")
    built = build(manager)
    assert row_of(built, "pg-missed").missed == {7: 2, 30: 3, 90: 5}
    assert row_of(built, "pg-other").missed == {7: 0, 30: 0, 90: 0}
    assert other.pk and built.summaries[0].missed == {7: 2, 30: 3, 90: 5}
    assert report.sort_rows(built.clusters, "missed")[0].name == "pg-missed"
    rows = {r["cluster"]: r for r in csv.DictReader(io.StringIO(report_export.as_csv(built)))}
    assert [rows["pg-missed"][f"missed_{d}d"] for d in report.WINDOWS] == ["2", "3", "5"]
    assert [rows["pg-other"][f"missed_{d}d"] for d in report.WINDOWS] == ["0", "0", "0"]
    head, cells = report_export.cluster_table(built)
    assert [c[head.index("Missed 30 d")] for c in cells] == ["3", "0"]
    summary_head, summary = report_export.summary_table(built)
    assert summary[0][summary_head.index("Missed 7 d")] == "2"
    client.force_login(manager)
    page = client.get(reverse("backups:report")).content.decode()
    assert "Missed 7 / 30 d" in page
    cluster_page = client.get(reverse("backups:report_cluster", args=[cluster.pk]))
    assert "2 in 7 days, 3 in 30" in cluster_page.content.decode()


def test_retention_compares_each_catalog_with_what_its_enabled_policies_ask(manager):
    rman = make_catalog(make_cluster("pg-rman"), engine="pg_rman")
    BackupPolicy.objects.create(catalog=rman, name="weekly", schedule="0 1 * * 0", mode="full",
                                keep_data_generations=2, keep_data_days=7)  # fmt: skip
    BackupPolicy.objects.create(catalog=rman, name="daily", schedule="0 2 * * *",
                                mode="incremental")  # fmt: skip
    run(rman, ago(days=3))  # one usable full, 3 days of history
    run(rman, ago(days=9), status="corrupt")  # not usable: does not count
    run(rman, ago(days=1), mode="incremental")
    row = row_of(build(manager), "pg-rman")
    assert row.retention.status == report.NOT_MET and row.policies == 2
    assert row.retention.reasons == [
        "main: 1 usable full backup, the policy keeps 2",
        "main: the oldest usable backup is 3.0 days old, the policy keeps 7 days",
    ]
    assert (row.retention.fulls_kept, row.retention.fulls_wanted) == (1, 2)
    assert (row.retention.oldest_days, row.retention.days_wanted) == (3.0, 7)

    run(rman, ago(days=8))  # a second usable full, 8 days old
    row = row_of(build(manager), "pg-rman")
    assert (row.retention.status, row.retention.reasons) == (report.MET, [])
    assert (row.retention.fulls_kept, row.retention.oldest_days) == (2, 8.0)


def test_retention_of_pgbackrest_catalogs_and_clusters_without_policy_or_retention(manager):
    brest = make_catalog(make_cluster("pg-brest"))
    BackupPolicy.objects.create(catalog=brest, name="full", schedule="0 1 * * 0", mode="full",
                                retention_full=2)  # fmt: skip
    spare = make_catalog(brest.cluster, name="spare")  # asks more: each catalog on its own
    BackupPolicy.objects.create(catalog=spare, name="spare-full", schedule="0 3 * * 0",
                                mode="full", retention_full=3)  # fmt: skip
    for days in (1, 8, 15):
        run(brest, ago(days=days))
    run(spare, ago(days=2))
    run(spare, ago(days=9), mode="incr")
    no_retention = make_catalog(make_cluster("pg-noretention"))
    BackupPolicy.objects.create(catalog=no_retention, name="d", schedule="0 2 * * *",
                                mode="incr")  # fmt: skip
    disabled = make_catalog(make_cluster("pg-disabled"))
    BackupPolicy.objects.create(catalog=disabled, name="off", schedule="0 2 * * *",
                                mode="full", retention_full=5, enabled=False)  # fmt: skip
    make_cluster("pg-nopolicy")
    built = build(manager)
    brest_row = row_of(built, "pg-brest")
    assert brest_row.retention.status == report.NOT_MET
    assert brest_row.retention.reasons == ["spare: 1 usable full backup, the policy keeps 3"]
    assert (brest_row.retention.fulls_kept, brest_row.retention.fulls_wanted) == (1, 3)
    assert row_of(built, "pg-noretention").retention.status == report.NO_RETENTION
    assert row_of(built, "pg-disabled").retention.status == report.NO_POLICY  # disabled: ignored
    assert row_of(built, "pg-nopolicy").retention.status == report.NO_POLICY
    assert [r.name for r in report.sort_rows(built.clusters, "retention")][:1] == ["pg-brest"]


def test_the_last_successful_test_restore_and_its_duration(manager):
    catalog = make_catalog(make_cluster("pg-tested"))
    backup = run(catalog, ago(days=2))
    node = Node.objects.get(name="pg-tested-db1")

    def restore(created, status="succeeded", test=True, minutes=12):
        return RestoreRun.objects.create(
            cluster=catalog.cluster, catalog=catalog, target_node=node, backup=backup,
            test_restore=test, status=status, created=created, started=created,
            ended=created + timedelta(minutes=minutes), duration=timedelta(minutes=minutes),
            check_ok=True, target_data_directory=f"/scratch/{created.timestamp()}",
        )  # fmt: skip

    wanted = restore(ago(days=3), minutes=17)
    restore(ago(days=1), status="failed")  # newer, failed: not a successful test
    restore(ago(hours=5), test=False)  # a real restore, not a test
    restore(ago(days=9))
    built = build(manager)
    row = row_of(built, "pg-tested")
    assert (row.test_restore.pk, row.test_restore.duration) == (wanted.pk, timedelta(minutes=17))
    assert (
        row.test_restore.duration_text == "17 min"
        and row.test_restore.backup_id == backup.backup_id
    )
    assert built.summaries[0].tested == 1


def test_the_per_environment_summary_adds_up_its_clusters(manager):
    for name, env, hours, status in (("p1", "production", 5, "ok"), ("p2", "production", 50, "ok"),
                                     ("s1", "staging", 2, "ok")):  # fmt: skip
        catalog = make_catalog(make_cluster(name, env))
        run(catalog, ago(hours=hours), status=status)
        run(catalog, ago(hours=hours + 1), status="failed")
    make_cluster("p3", "production")  # no backup at all
    built = build(manager)
    production, staging, total = built.summaries
    assert (production.name, staging.name, total.name) == ("production", "staging",
                                                            "all environments")  # fmt: skip
    assert (production.clusters, production.with_usable, production.without_usable,
            production.fresh) == (3, 2, 1, 1)  # fmt: skip
    assert (production.rates[7].ok, production.rates[7].finished) == (2, 4)
    assert report.never(production.oldest_age)  # p3 has none: "never"
    assert report.human_age(production.oldest_age) == "never"
    assert staging.oldest_age == timedelta(hours=1, minutes=55)  # from the end of the backup
    assert (total.clusters, total.with_usable, total.rates[30].finished) == (4, 3, 6)
    only_staging = build(manager, environment="staging")
    assert [r.name for r in only_staging.clusters] == ["s1"] and len(only_staging.summaries) == 1
    assert only_staging.environments == ["production", "staging"]


def test_sorting_by_age_puts_clusters_without_a_usable_backup_first(manager):
    for name, hours in (("a-fresh", 1), ("b-old", 100)):
        run(make_catalog(make_cluster(name)), ago(hours=hours))
    make_cluster("c-none")
    built = build(manager, sort="age")
    assert [r.name for r in built.clusters] == ["c-none", "b-old", "a-fresh"]
    assert build(manager, sort="nonsense").sort == "environment"


def _seed(count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        catalog = make_catalog(make_cluster(f"q-{i:03d}", "qa" if i % 2 else "production"))
        BackupPolicy.objects.create(catalog=catalog, name="w", schedule="0 1 * * 0", mode="full",
                                    retention_full=2)  # fmt: skip
        for days in (1, 10, 40):
            run(catalog, ago(days=days), status="ok" if days != 10 else "failed")
        RestoreRun.objects.create(
            cluster=catalog.cluster, catalog=catalog, target_node=catalog.cluster.nodes.first(),
            test_restore=True, status="succeeded", ended=ago(days=2),
            duration=timedelta(minutes=3),
        )  # fmt: skip


def test_the_number_of_queries_does_not_grow_with_the_fleet(manager):
    """9 queries, as docs/backup-reports.md lists them."""
    manager.has_perm(report.VIEW)  # the user's permissions, read once per request anyway
    counts = []
    for more in (2, 10, 30):
        _seed(more, start=len(Cluster.objects.all()))
        with CaptureQueriesContext(connection) as captured:
            built = build(manager)
        counts.append((len(built.clusters), len(captured)))
    assert [c for c, _ in counts] == [2, 12, 42]
    assert len({q for _, q in counts}) == 1, counts
    assert counts[0][1] == 9, counts


# --- pages and exports ----------------------------------------------------------------------------


@pytest.fixture
def fleet():
    _seed(3)
    return Cluster.objects.order_by("name")


@pytest.mark.parametrize("persona", ["manager", "auditor", "dba"])
def test_managers_auditors_and_dbas_read_the_report(persona, request, client, fleet):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse("backups:report"), {"env": "production", "sort": "name"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "q-000" in page and "q-002" in page and "q-001" not in page  # q-001 is in qa
    assert "Per environment" in page and "66.7 %" in page  # 2 of 3 over 90 days


@pytest.mark.parametrize("persona", ["helpdesk", "outsider"])
def test_others_may_not_read_the_report_nor_export_it(persona, request, client, fleet):
    client.force_login(request.getfixturevalue(persona))
    for name in ("backups:report", "backups:report_csv", "backups:report_pdf"):
        assert client.get(reverse(name)).status_code == 403
    assert client.get(reverse("backups:report_cluster", args=[fleet[0].pk])).status_code == 403


def test_an_unknown_environment_is_named_as_the_filter_s_error(client, manager, fleet):
    client.force_login(manager)
    response = client.get(reverse("backups:report"), {"env": "<nowhere>"})
    page = response.content.decode()
    assert response.status_code == 200 and response.context["report"].clusters == []
    assert "No environment is named “&lt;nowhere&gt;”." in page and 'aria-invalid="true"' in page


def test_signed_out_is_sent_to_sign_in_and_posting_is_refused(client, manager, fleet):
    response = client.get(reverse("backups:report"))
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(manager)
    assert client.post(reverse("backups:report")).status_code == 405
    assert client.post(reverse("backups:report_csv")).status_code == 405


def test_a_cluster_page_has_its_figures_and_the_runs_for_its_charts(client, manager, fleet):
    client.force_login(manager)
    cluster = fleet[0]
    response = client.get(reverse("backups:report_cluster", args=[cluster.pk]))
    assert response.status_code == 200
    chart = response.context["chart"]
    assert [(p["status"], p["mode"]) for p in chart] == [("ok", "full"), ("failed", "full"),
                                                         ("ok", "full")]  # fmt: skip
    assert chart[0]["t"] < chart[-1]["t"] and chart[-1]["seconds"] == 300.0
    page = response.content.decode()
    assert 'id="report-runs"' in page and "chart-4.6.1.umd.min.js" in page
    assert f"Backup report of {cluster.name}" in page
    missing = reverse("backups:report_cluster", args=[cluster.pk + 1000])
    assert client.get(missing).status_code == 404


def test_the_csv_has_one_row_per_cluster_with_the_figures(client, manager, fleet):
    client.force_login(manager)
    response = client.get(reverse("backups:report_csv"), {"env": "qa"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="backup-report-qa-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["cluster"] for r in rows] == ["q-001"]
    [row] = rows
    assert (row["success_percent_90d"], row["usable_90d"], row["finished_90d"]) == (
        "66.7", "2", "3")  # fmt: skip
    assert (row["retention"], row["full_backups_kept"], row["full_backups_wanted"]) == (
        "met", "2", "2")  # fmt: skip
    assert row["test_restore_duration_s"] == "180.0" and row["last_usable_mode"] == "full"


def test_csv_cells_cannot_run_as_spreadsheet_formulas(manager):
    make_cluster("=HYPERLINK(1)")
    text = report_export.as_csv(build(manager))
    assert "'=HYPERLINK(1)" in text


def test_the_pdf_opens_with_a_cover_the_summary_and_every_cluster(client, manager, fleet):
    client.force_login(manager)
    response = client.get(reverse("backups:report_pdf"))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    cover = reader.pages[0].extract_text()
    assert "Backup report" in cover and "Period: the last 7 days" in cover
    assert "Generated at" in cover and "by manager" in cover
    rest = "\n".join(p.extract_text() for p in reader.pages[1:])
    assert "Per environment" in rest and "Per cluster" in rest
    for name in ("q-000", "q-001", "q-002", "production", "qa", "all environments"):
        assert name in rest


def test_the_restorable_point_and_rpo_come_from_the_newest_archive_check(manager):
    cluster = make_cluster("pg-rpo")
    ArchiveCheck.objects.create(cluster=cluster, checked_at=ago(hours=3), continuous=True,
                                restorable_to=ago(hours=3, minutes=1))  # fmt: skip
    ArchiveCheck.objects.create(cluster=cluster, checked_at=ago(minutes=10), continuous=False,
                                first_gap="000000010000000000000042",
                                restorable_to=ago(hours=2))  # fmt: skip
    make_cluster("pg-unchecked")
    built = build(manager)
    row = row_of(built, "pg-rpo")
    assert (row.restorable_to, row.rpo, row.archive_continuous) == (
        ago(hours=2), timedelta(hours=2), False)  # fmt: skip
    assert row.archive_gap == "000000010000000000000042" and row.rpo_text == "2.0 h"
    assert row_of(built, "pg-unchecked").rpo is None
    rows = {r["cluster"]: r for r in csv.DictReader(io.StringIO(report_export.as_csv(built)))}
    assert rows["pg-rpo"]["rpo_seconds"] == "7200.0" and rows["pg-unchecked"]["rpo_seconds"] == ""
    head, cells = report_export.cluster_table(built)
    assert [c[head.index("RPO")] for c in cells] == ["2.0 h", "—"]


def test_an_environment_page_sums_its_backups_per_day(client, manager, auditor):
    day = timezone.localtime(NOW).replace(hour=12, minute=0, second=0, microsecond=0)
    a = make_catalog(make_cluster("pg-env-a", "finance"))
    b = make_catalog(make_cluster("pg-env-b", "finance"))
    other = make_catalog(make_cluster("pg-elsewhere", "lab"))
    run(a, day - timedelta(days=1), total_bytes=100, written_bytes=40)
    run(b, day - timedelta(days=1, hours=1), total_bytes=50, written_bytes=10,
        took=timedelta(minutes=10))  # fmt: skip
    run(b, day - timedelta(days=1, hours=2), status="failed", total_bytes=None)
    run(a, day - timedelta(days=3), total_bytes=7)
    run(other, day - timedelta(days=1), total_bytes=1000)  # another environment
    days = report.daily("finance", now=NOW)
    assert [(d["day"], d["ok"], d["finished"], d["read"], d["written"], d["seconds"])
            for d in days] == [
        ((day - timedelta(days=3)).date(), 1, 1, 7, None, 300.0),
        ((day - timedelta(days=1)).date(), 2, 3, 150, 50, 1200.0),
    ]  # fmt: skip
    client.force_login(auditor)
    response = client.get(reverse("backups:report_environment", args=["finance"]))
    assert response.status_code == 200
    assert [(p["ok"], p["failed"], p["read"]) for p in response.context["chart"]] == [
        (1, 0, 7), (2, 1, 150)]  # fmt: skip
    page = response.content.decode()
    assert "Backup report of finance" in page and "pg-env-a" in page
    assert "pg-elsewhere" not in page and 'id="report-day-series"' in page
    missing = reverse("backups:report_environment", args=["nowhere"])
    assert client.get(missing).status_code == 404
    client.force_login(manager)
    report_page = client.get(reverse("backups:report")).content.decode()
    assert f'href="{reverse("backups:report_environment", args=["finance"])}"' in report_page
