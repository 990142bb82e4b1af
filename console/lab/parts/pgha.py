"""PostgreSQL 15 high availability: a primary on db1 and a synchronous hot standby on db2.

primary (db1)  initdb --data-checksums; wal_level replica, WAL archived into LAB_DIR/archive
               (the backup site's shared catalog; the copy refuses to overwrite), fsync off (the
               lab only), scram-sha-256 for the lab network, a `replicator` role, the seed of
               pgha_seed.py. LAB_PG_* point at it.
standby (db2)  pg_basebackup -R -X stream -C -S db2 -d application_name=db2 from the primary,
               restore_command from the archive. Only once it streams does the primary make it
               synchronous, by ALTER SYSTEM (synchronous_standby_names = db2, synchronous_commit
               = remote_apply): set before, every commit would block; set after the base backup,
               a promoted standby does not inherit it and does not block.

remote_apply, not `on`: with `on` a commit returns once the standby has flushed the WAL, not
replayed it, so a read on db2 just after a commit may miss the row (measured here: 63 of 2000
reads right after a commit missed it with `on`, none with remote_apply, at the same 0.4 ms per
commit). The lab promises "committed through pgpool, readable on db2 at once".

Stopping or crashing the primary makes pgpool fail over to db2 (health check every second);
starting db1 again afterwards gives two primaries, as it would in production without fencing.

A part counts as running only in its role and on the current build of the parts it was built
on: the primary without standby.signal, the standby with it (promotion removes it), and
`build-id` files record what each was built on (a rebuilt primary is a new cluster). So after
a failover or a rejoin, `lab up pgha` (the tests' teardown) rebuilds what must be rebuilt and
gives the normal topology back.

Waits and faults for tests: wait_for_streaming, wait_for_sync, kill_server (PostgreSQL alone
crashes; faults.crash_host crashes the whole host), promote, rejoin_as_standby (the old primary
as a standby of the new one, by a fresh base backup), and `query`/`deadline`, which put a
client-side deadline on SQL (a commit waiting for a synchronous standby ignores
statement_timeout).
"""

import contextlib
import json
import secrets
import shlex
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from console.lab import proc, seed
from console.lab.part import Part, new_password
from console.lab.parts import pgha_seed
from console.lab.parts.postgres import PG_BIN, PostgresServer

PG_PORT = 5432
STANDBY_NAME = "db2"  # the standby's application_name and replication slot
REPLICATION_USER = "replicator"
APPLICATION_NAME = "dbconsole-lab"


def conf_string(value: str) -> str:
    """A postgresql.conf (or pgpool.conf) string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# --- SQL with deadlines -----------------------------------------------------------------------
def connect(target: dict, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection:
    """A connection to `target` ({host, port, user, password}) with a 3 s connect timeout."""
    return psycopg.connect(
        host=target["host"],
        port=target["port"],
        user=target.get("user", "postgres"),
        password=target["password"],
        dbname=dbname,
        connect_timeout=kwargs.pop("connect_timeout", 3),
        application_name=kwargs.pop("application_name", APPLICATION_NAME),
        **kwargs,
    )


@contextlib.contextmanager
def deadline(conn: psycopg.Connection, timeout: float) -> Iterator[None]:
    """Cancel what `conn` runs once `timeout` seconds have passed, and raise TimeoutError then
    (also when the server ignored the cancel: a commit waiting for a synchronous standby is
    released by it, but has already committed locally)."""
    fired = threading.Event()

    def cancel() -> None:
        fired.set()
        conn.cancel_safe(timeout=2)

    timer = threading.Timer(timeout, cancel)
    timer.start()
    try:
        yield
    except psycopg.errors.QueryCanceled:
        if fired.is_set():
            raise TimeoutError(f"statement did not finish within {timeout:g} s") from None
        raise
    finally:
        timer.cancel()
    if fired.is_set():
        raise TimeoutError(f"statement did not finish within {timeout:g} s")


def query(
    target: dict, statement: Any, params: Sequence | dict | None = None, *, timeout: float = 10
) -> list[tuple]:
    """Run one statement in a new autocommit connection and return its rows (none for a
    statement without result); TimeoutError after `timeout` seconds (see `deadline`)."""
    with connect(target, target.get("dbname", "postgres"), autocommit=True) as conn:
        with deadline(conn, timeout):
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


# --- which build a part was built on ----------------------------------------------------------
def write_build_id(part: Part, upstream: Sequence[Part] = ()) -> None:
    """Record a new identity for this build of `part` and the builds of `upstream` it uses."""
    record = {"id": secrets.token_hex(8), "on": {up.name: build_id(up) for up in upstream}}
    proc.write_file(part.dir / "build-id", json.dumps(record) + "\n", mode=0o644)


def build_id(part: Part) -> str | None:
    try:
        return json.loads((part.dir / "build-id").read_text())["id"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def built_on_current(part: Part, upstream: Sequence[Part]) -> bool:
    """True when `part` was built on the current builds of `upstream` (none was rebuilt since)."""
    try:
        recorded = json.loads((part.dir / "build-id").read_text())["on"]
    except (FileNotFoundError, ValueError, KeyError):
        return False
    current = {up.name: build_id(up) for up in upstream}
    return None not in current.values() and all(recorded.get(n) == i for n, i in current.items())


# --- the servers ------------------------------------------------------------------------------
class HaPostgres(PostgresServer):
    """A PostgreSQL 15 server of the HA pair in <part>/data, run by the postgres OS user on its
    host, listening on the host's address and on a unix socket in <part>/run."""

    port = PG_PORT  # on a namespaced host; a free port on loopback
    upstream: ClassVar[tuple[str, ...]] = ()

    @property
    def archive(self) -> Path:
        return self.lab.dir / "archive"

    def upstream_parts(self) -> list[Part]:
        return [self.lab.parts[name] for name in self.upstream]

    def running(self) -> bool:
        return super().running() and built_on_current(self, self.upstream_parts())

    def host_settings(self, rec: dict) -> dict[str, str]:
        """Settings that differ per host (a base backup copies the primary's postgresql.conf)."""
        return {
            "listen_addresses": conf_string(rec["host"]),
            "port": str(rec["port"]),
            "unix_socket_directories": conf_string(str(self.socket_dir)),
            "restore_command": conf_string(f"cp {shlex.quote(str(self.archive))}/%f %p"),
        }

    def append_settings(self, settings: dict[str, str], title: str) -> None:
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"\n# --- dbconsole lab: {title} ---\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def is_standby(self) -> bool:
        """True while the data directory is a standby's (promotion removes standby.signal)."""
        return (self.data / "standby.signal").exists()

    def base_backup(self, source: dict, name: str) -> None:
        """Fill <part>/data (which must not exist) with a base backup of `source` (a record
        with host, port, replication_password) to be a standby named `name`: its
        application_name, and a replication slot created on the source."""
        passfile = proc.write_file(
            self.dir / "pgpass",
            f"*:*:*:{REPLICATION_USER}:{source['replication_password']}\n",
            owner="postgres",
            mode=0o600,
        )
        conninfo = psycopg.conninfo.make_conninfo(
            host=source["host"],
            port=source["port"],
            user=REPLICATION_USER,
            passfile=str(passfile),
            application_name=name,
            connect_timeout=5,
        )
        argv = [f"{PG_BIN}/pg_basebackup", "-D", str(self.data), "-R", "-X", "stream"]
        argv += ["-C", "-S", name, "-c", "fast", "--no-sync", "--no-password", "-d", conninfo]
        self.run_as_postgres(argv, timeout=120)

    def target(self, rec: dict, dbname: str = "postgres") -> dict:
        """How to log in as postgres (host, port, user, password, dbname) for `query`."""
        password = self.lab.load()["parts"]["primary"]["superuser_password"]
        return {"host": rec["host"], "port": rec["port"], "user": "postgres",
                "password": password, "dbname": dbname}  # fmt: skip

    def hba(self) -> str:
        network = str(self.lab.net.network) if self.host.in_namespace else "127.0.0.1/32"
        return (
            "# TYPE  DATABASE     USER        ADDRESS         METHOD\n"
            "local   all          postgres                    peer\n"
            f"host    replication  {REPLICATION_USER}  {network}  scram-sha-256\n"
            f"host    all          all         {network}  scram-sha-256\n"
        )


class PgPrimary(HaPostgres):
    """db1: the primary, with the seed data. Rebuilding it empties the WAL archive (a new
    cluster restarts WAL file names, which the no-overwrite archive_command would refuse)."""

    name = "primary"
    description = "PostgreSQL primary"

    def running(self) -> bool:
        return super().running() and not self.is_standby()  # not after a rejoin_as_standby

    def new_record(self, old: dict, taken: set[int]) -> dict:
        rec = super().new_record(old, taken)
        rec["superuser_password"] = old.get("superuser_password") or new_password()
        rec["replication_password"] = old.get("replication_password") or new_password()
        return rec

    def build(self, rec: dict) -> None:
        proc.make_dir(self.dir, owner="postgres", mode=0o700)
        proc.make_dir(self.socket_dir, owner="postgres", mode=0o755)
        if self.archive.exists():
            shutil.rmtree(self.archive)
        proc.make_dir(self.archive, owner="postgres", mode=0o700)
        self.initdb(rec)
        proc.write_file(self.data / "pg_hba.conf", self.hba(), owner="postgres", mode=0o600)
        archive = shlex.quote(str(self.archive))
        self.append_settings(
            {
                "password_encryption": "'scram-sha-256'",
                "fsync": "off",  # the lab only: a crash of the machine loses the lab anyway
                "shared_buffers": "32MB",
                "max_connections": "100",
                "wal_level": "replica",
                "hot_standby": "on",
                "max_wal_senders": "10",
                "max_replication_slots": "10",
                "archive_mode": "on",
                "archive_command": conf_string(f"test ! -f {archive}/%f && cp %p {archive}/%f"),
                "wal_retrieve_retry_interval": "1s",
                "wal_sender_timeout": "5s",  # a partition shows in pg_stat_replication in 5 s
                "wal_receiver_timeout": "5s",
                "wal_receiver_status_interval": "1s",
                "log_line_prefix": "'%m [%p] %q%u@%d '",
            },
            "cluster",
        )
        self.append_settings(self.host_settings(rec), f"host {self.host.name}")
        self.start()
        self.provision(rec)
        write_build_id(self)

    def initdb(self, rec: dict) -> None:
        pwfile = proc.write_file(
            self.dir / "pwfile", rec["superuser_password"], owner="postgres", mode=0o600
        )
        argv = [f"{PG_BIN}/initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}"]
        argv += ["--data-checksums", "--auth-local=peer", "--auth-host=scram-sha-256"]
        argv += ["-E", "UTF8", "--locale=C.UTF-8", "--no-instructions", "--no-sync"]
        try:
            self.run_as_postgres(argv, timeout=120)
        finally:
            pwfile.unlink()

    def provision(self, rec: dict) -> None:
        """The replication role, the seed roles and databases (before any standby exists, so no
        statement waits for one)."""
        target = {**self.target(rec), "password": rec["superuser_password"]}
        with connect(target, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} REPLICATION LOGIN PASSWORD {}").format(
                    sql.Identifier(REPLICATION_USER), sql.Literal(rec["replication_password"])
                )
            )
            for statement in pgha_seed.role_statements():
                conn.execute(statement)
            conn.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(seed.PG_SEED_DATABASE))
            )
            for database in seed.SEED_DATABASES:
                conn.execute(pgha_seed.create_database(database))
        with connect(target, seed.PG_SEED_DATABASE, autocommit=True) as conn:
            for statement in seed.PG_SEED_SQL:
                conn.execute(statement)  # type: ignore[arg-type]
        for database in seed.SEED_DATABASES:
            with connect(target, database) as conn:  # one transaction per database
                for statement in pgha_seed.inside_database(database):
                    conn.execute(statement)

    def env(self, rec: dict) -> dict[str, str]:
        return {
            "LAB_PG_HOST": rec["host"],
            "LAB_PG_PORT": str(rec["port"]),
            "LAB_PG_USER": "postgres",
            "LAB_PG_PASSWORD": rec["superuser_password"],
        }


class PgStandby(HaPostgres):
    """db2: a hot standby of the primary, synchronous once it streams."""

    name = "standby"
    description = "PostgreSQL sync standby"
    upstream = ("primary",)

    def running(self) -> bool:
        return super().running() and self.is_standby()  # not once promoted

    def new_record(self, old: dict, taken: set[int]) -> dict:
        return {**super().new_record(old, taken), "application_name": STANDBY_NAME}

    def build(self, rec: dict) -> None:
        primary = self.lab.parts["primary"]
        primary_rec = self.lab.load()["parts"]["primary"]
        if not primary.running():
            raise proc.LabError("the primary is not running; build it first (lab up primary)")
        primary_target = primary.target(primary_rec)  # type: ignore[attr-defined]
        # While no standby streams, nothing may wait for one; an old slot would make -C fail.
        make_asynchronous(primary_target)
        query(
            primary_target,
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = %s",
            [STANDBY_NAME],
        )
        proc.make_dir(self.dir, owner="postgres", mode=0o700)
        proc.make_dir(self.socket_dir, owner="postgres", mode=0o755)
        self.base_backup(primary_rec, STANDBY_NAME)
        self.append_settings(self.host_settings(rec), f"host {self.host.name}")
        self.start()
        wait_for_streaming(primary_target, STANDBY_NAME, timeout=30)
        make_synchronous(primary_target, STANDBY_NAME)
        wait_for_sync(primary_target, STANDBY_NAME, timeout=30)
        write_build_id(self, self.upstream_parts())

    def env(self, rec: dict) -> dict[str, str]:
        return {"LAB_PG_STANDBY_HOST": rec["host"], "LAB_PG_STANDBY_PORT": str(rec["port"])}


# --- replication ------------------------------------------------------------------------------
def make_synchronous(primary: dict, standby_name: str) -> None:
    """Make the primary wait for `standby_name` to apply every commit (ALTER SYSTEM + reload)."""
    names = sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}")
    query(primary, names.format(sql.Literal(standby_name)))
    query(primary, "ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
    query(primary, "SELECT pg_reload_conf()")


def make_asynchronous(primary: dict) -> None:
    """Let the primary commit without any standby (undo make_synchronous)."""
    query(primary, "ALTER SYSTEM RESET synchronous_standby_names")
    query(primary, "ALTER SYSTEM RESET synchronous_commit")
    query(primary, "SELECT pg_reload_conf()")


def replication_state(primary: dict, standby_name: str) -> tuple[str, str] | None:
    """(state, sync_state) of `standby_name` in the primary's pg_stat_replication, or None."""
    rows = query(
        primary,
        "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s",
        [standby_name],
        timeout=3,
    )
    return rows[0] if rows else None


def wait_for_streaming(primary: dict, standby_name: str, timeout: float = 20) -> None:
    """Return once `standby_name` streams from the primary; LabError after `timeout`."""
    proc.wait_for(
        lambda: (replication_state(primary, standby_name) or ("",))[0] == "streaming",
        timeout,
        f"{standby_name} to stream from the primary",
        step=0.1,
    )


def wait_for_sync(primary: dict, standby_name: str = STANDBY_NAME, timeout: float = 20) -> None:
    """Return once pg_stat_replication on the primary says `standby_name` streams and is sync."""
    proc.wait_for(
        lambda: replication_state(primary, standby_name) == ("streaming", "sync"),
        timeout,
        f"{standby_name} to be a synchronous standby",
        step=0.1,
    )


# --- faults -----------------------------------------------------------------------------------
def kill_server(part: HaPostgres) -> float:
    """SIGKILL the postmaster and every process it started (what a crash of its host does to
    PostgreSQL), and return the seconds until none runs (a zombie counts as gone: PID 1 reaps
    slowly here). Its address then refuses connections at once."""
    started = time.monotonic()
    pid = part.pid()
    if not proc.alive(pid, part.comm):
        return 0.0
    victims = [pid, *proc.descendants(pid)]
    for victim in victims:
        proc.signal_quietly(victim, 9)
    proc.wait_for(
        lambda: not any(proc.alive(victim) for victim in victims), 15, f"{part.name} to die"
    )
    return time.monotonic() - started


def promote(part: HaPostgres) -> None:
    """Promote a standby with `pg_ctl promote -w` on its host; return once it accepts writes."""
    part.run_as_postgres([f"{PG_BIN}/pg_ctl", "promote", "-D", str(part.data), "-w", "-s"])


def is_primary(target: dict) -> bool:
    """True when the server answers and is not in recovery."""
    try:
        return query(target, "SELECT NOT pg_is_in_recovery()", timeout=3) == [(True,)]
    except (psycopg.Error, TimeoutError):
        return False


def rejoin_as_standby(old: HaPostgres, new_primary: HaPostgres, name: str) -> None:
    """Make the failed old primary a standby of the promoted one, as a DBA does after a
    failover: its server stopped (or already dead), its data directory replaced by a fresh base
    backup of the new primary (application_name and slot `name`), started; return once it
    streams. The lab's parts are then swapped in role: `lab up pgha` rebuilds them."""
    records = old.lab.load()["parts"]
    old_rec = records[old.name]
    source = {
        **records[new_primary.name],
        "replication_password": records["primary"]["replication_password"],
    }
    old.stop(old_rec)
    shutil.rmtree(old.data, ignore_errors=True)
    new_target = new_primary.target(records[new_primary.name])
    query(
        new_target,
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
        [name],
    )
    old.base_backup(source, name)
    old.append_settings(old.host_settings(old_rec), f"host {old.host.name}")
    old.start()
    wait_for_streaming(new_target, name, timeout=30)
