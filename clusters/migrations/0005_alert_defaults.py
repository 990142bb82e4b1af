"""The default alert rules a DBA expects (docs/alerts.md). Idempotent: a rule that exists
already (perhaps tuned by a DBA) is left as it is. Reversing removes the default rules that
never raised an alert; the others go with the tables when 0004 is reversed.

The rules are written out here, not imported from clusters.alerts, so that this migration keeps
meaning what it meant when the code changes."""

from django.db import migrations

MIB = 1024 * 1024

DEFAULT_RULES = [
    {
        "key": "replication_lag",
        "title": "Replication lag",
        "description": "A standby replays WAL this many bytes behind its primary "
        "(pg_stat_replication on the primary).",
        "unit": "bytes",
        "warning": 1 * MIB,
        "critical": 10 * MIB,
        "for_seconds": 60,
    },
    {
        "key": "no_sync_standby",
        "title": "No synchronous standby",
        "description": "The cluster has standbys but none is synchronous: commits wait or are "
        "no longer copied before they return.",
        "unit": "",
        "warning": None,
        "critical": None,
        "for_seconds": 0,
    },
    {
        "key": "node_down",
        "title": "Node down",
        "description": "A database or pgpool-II node did not answer the collector.",
        "unit": "",
        "warning": None,
        "critical": None,
        "for_seconds": 0,
    },
    {
        "key": "pgpool_backend_down",
        "title": "pgpool-II backend down",
        "description": "A pgpool-II node reports one of its backends down (SHOW POOL_NODES).",
        "unit": "",
        "warning": None,
        "critical": None,
        "for_seconds": 0,
    },
    {
        "key": "archive_failures",
        "title": "WAL archiving failing",
        "description": "pg_stat_archiver's failed_count grew since the previous collection, or "
        "its last failure is newer than its last success.",
        "unit": "",
        "warning": None,
        "critical": None,
        "for_seconds": 0,
    },
    {
        "key": "wal_ready",
        "title": "WAL files waiting to be archived",
        "description": "WAL segments with a .ready file in archive_status: the archiver is "
        "behind or failing, and pg_wal grows.",
        "unit": "files",
        "warning": 10,
        "critical": 20,
        "for_seconds": 300,
    },
    {
        "key": "disk_used",
        "title": "Data directory disk use",
        "description": "Use of the file system holding the data directory (df).",
        "unit": "%",
        "warning": 80,
        "critical": 90,
        "for_seconds": 0,
    },
    {
        "key": "log_panic_fatal",
        "title": "PANIC or FATAL in the server log",
        "description": "New PANIC lines (critical) or FATAL lines (warning) in the server log "
        "since the previous collection.",
        "unit": "lines",
        "warning": None,
        "critical": None,
        "for_seconds": 0,
    },
]


def create_default_rules(apps, schema_editor):
    AlertRule = apps.get_model("clusters", "AlertRule")
    for rule in DEFAULT_RULES:
        AlertRule.objects.get_or_create(key=rule["key"], defaults=rule)


def remove_unused_default_rules(apps, schema_editor):
    AlertRule = apps.get_model("clusters", "AlertRule")
    keys = [rule["key"] for rule in DEFAULT_RULES]
    AlertRule.objects.filter(key__in=keys, alerts__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("clusters", "0004_alerts")]

    operations = [migrations.RunPython(create_default_rules, remove_unused_default_rules)]
