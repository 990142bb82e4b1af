"""The one road to managed servers: SSH commands and SQL, each audited.

Public API (implemented in ssh.py and sql.py):

    result = run_command(target, ["pg_ctl", "status", "-D", datadir],
                         actor=user, job=job, action=audit.REMOTE_COMMAND, sudo_user="postgres")
    rows = run_sql(target, query, params, actor=user, job=job, action=audit.REMOTE_SQL)

`target` is an SshTarget, PgTarget or MysqlTarget (or a model with an `ssh_target()`,
`pg_target()` or `mysql_target()` method, as clusters' nodes will have). Every call appends a
`started` audit entry before it touches the host and an outcome entry afterwards (see _audit.py),
outside any transaction of the caller: called inside one, it raises RuntimeError before doing
anything. Secrets (the target's password or private key, and `secrets=`) are redacted
from the entries and the job log. SSH host keys must match the target's recorded known_hosts
(`ssh.fetch_host_keys` and `ssh.fingerprint` serve registration); commands run under a host-side
`timeout`; SQL has a server-side and a client-side timeout.
"""

from dataclasses import dataclass, field

from console.errors import ExpectedFailure


@dataclass(frozen=True)
class SshTarget:
    """How to reach a host over SSH. `known_hosts` holds the host keys recorded at registration,
    in OpenSSH known_hosts format; a key not in it is refused."""

    name: str
    host: str
    port: int = 22
    username: str = "root"
    known_hosts: str = ""
    private_key: str = field(default="", repr=False)  # OpenSSH private key text (a secret)


@dataclass(frozen=True)
class PgTarget:
    name: str
    host: str
    port: int = 5432
    dbname: str = "postgres"
    username: str = "postgres"
    password: str = field(default="", repr=False)
    sslmode: str = "prefer"


@dataclass(frozen=True)
class MysqlTarget:
    name: str
    host: str
    port: int = 3306
    username: str = "root"
    password: str = field(default="", repr=False)
    database: str = ""
    unix_socket: str = ""


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str
    duration_ms: int
    audit_id: int  # the outcome audit entry


@dataclass(frozen=True)
class SqlResult:
    columns: list[str]
    rows: list[tuple]
    rowcount: int
    duration_ms: int
    audit_id: int


class ExecutorError(ExpectedFailure):
    """A remote call did not succeed; the message is safe to show."""


class HostUnreachable(ExecutorError):
    """Connection refused, timed out or name unknown."""


class HostKeyRejected(ExecutorError):
    """The host's key is unknown or changed; nothing was run."""


class AuthenticationFailed(ExecutorError):
    """The server refused the credentials."""


class CommandFailed(ExecutorError):
    """The command ran and exited non-zero, or timed out."""

    def __init__(self, message: str, result: "CommandResult | None" = None):
        super().__init__(message)
        self.result = result


class SqlFailed(ExecutorError):
    """The statement failed or timed out on the server."""


def run_command(*args, **kwargs) -> CommandResult:
    from console.executor.ssh import run_command as impl

    return impl(*args, **kwargs)


def run_sql(*args, **kwargs) -> SqlResult:
    from console.executor.sql import run_sql as impl

    return impl(*args, **kwargs)
