"""Backup actions, one module per area, all re-exported here (`from backups.actions import X`):

- `catalogs`: run pg_rman or pgBackRest on a node, read a catalog or repository into BackupRun
  rows (`run_pg_rman`, `read_catalog`, `run_pgbackrest`, `read_repository`,
  `store_catalog_listing`, `reader_node`, `repository`, `pg_instance`);
- `runs`: `start_backup` and the backup job's body `run_backup` (both engines);
- `scratch`: `restore_to_scratch`, a test restore into a scratch instance.
"""

from backups.actions.catalogs import *  # noqa: F403
from backups.actions.runs import *  # noqa: F403
from backups.actions.scratch import *  # noqa: F403
from console.errors import ExpectedFailure  # noqa: F401 (callers catch it from here)
