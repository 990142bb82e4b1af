"""pg_rman 1.3.x: argv builders, input checks and parsers (pure: no network, no database).

Every builder checks its input first and raises DriverInputError naming the field, so nothing
malformed ever reaches an argv. Option spellings are those of `pg_rman --help` (1.3.19); the
argv shapes are those of the captured runs in tests/backups/fixtures/pg_rman/, which the
tests rebuild exactly. pg_rman has no machine-readable output: the parsers read its `show`
tables (fixed columns, sizes rounded by its pretty_size), the `show DATE` ini dump (exact
bytes, the same format as each backup's backup.ini), and the INFO/WARNING/ERROR/DETAIL/HINT
lines it writes to stderr.

One module per concern, all re-exported here (callers write `pg_rman.backup(...)`,
`pg_rman.parse_show(...)`, as with backups.actions and backups.models):

- `commands`: the input checks and the argv builders;
- `parsers`: what pg_rman prints (`show` tables and ini dumps, stderr messages, progress,
  validate, delete, purge, retention and restore output, the catalog's files);
- `errors`: its exit codes and known ERROR texts, explained as an EngineError.
"""

from backups.drivers.pg_rman.commands import *  # noqa: F403
from backups.drivers.pg_rman.errors import *  # noqa: F403
from backups.drivers.pg_rman.parsers import *  # noqa: F403
