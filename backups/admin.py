"""Backups in the admin site: read-only, like the console's other records. Catalogs,
policies and runs change only through backups.actions, which audit every change."""

from django.contrib import admin

from backups.models import BackupCatalog, BackupPolicy, BackupRun, RestoreRun
from console.admin import ReadOnlyAdmin


@admin.register(BackupCatalog)
class BackupCatalogAdmin(ReadOnlyAdmin):
    list_display = ("name", "cluster", "engine", "path", "initialized", "last_read")
    list_filter = ("engine",)
    search_fields = ("name", "cluster__name", "path")


@admin.register(BackupPolicy)
class BackupPolicyAdmin(ReadOnlyAdmin):
    list_display = ("name", "catalog", "mode", "schedule", "enabled")
    list_filter = ("mode", "enabled")


@admin.register(BackupRun)
class BackupRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "cluster", "catalog", "mode", "backup_id", "status", "started",
                    "written_bytes", "found_outside_console")  # fmt: skip
    list_filter = ("status", "mode", "found_outside_console")  # choices only: cheap over 1M rows
    search_fields = ("=backup_id", "=cluster__name")
    list_select_related = ("cluster", "catalog")
    raw_id_fields = ("job", "policy", "source_node")


@admin.register(RestoreRun)
class RestoreRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "cluster", "target_node", "target_kind", "target_value", "status",
                    "created", "duration", "check_ok")  # fmt: skip
    list_filter = ("status", "target_kind", "test_restore")
    list_select_related = ("cluster", "target_node")
