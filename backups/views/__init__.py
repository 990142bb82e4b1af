"""Pages of the backups app, one module per area (each owns its `urlpatterns`):

- `policies`: catalogs, policies and their schedules, runs (issue 7 parts 2, 3, 7)
- `restore`: the restore wizard (part 4)
- `assurance`: test restores, WAL continuity, restorable point and RPO (part 5)
- `reports`: the manager report, CSV/PDF exports (part 6)
"""
