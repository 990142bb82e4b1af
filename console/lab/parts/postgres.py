"""PostgreSQL 15: `meta`, the console's own metadata database, on the bridge address.

The managed PostgreSQL servers (primary on db1, standby on db2) are in pgha.py.
"""

import psycopg
from psycopg import sql

from console.lab import proc
from console.lab.part import Part, new_password

PG_BIN = "/usr/lib/postgresql/15/bin"


class PostgresServer(Part):
    """A PostgreSQL 15 server run by the postgres OS user on its host, with its files in
    <part>/data, its unix socket in <part>/run and its log in <part>/postgres.log."""

    comm = "postgres"

    @property
    def data(self):
        return self.dir / "data"

    @property
    def socket_dir(self):
        return self.dir / "run"

    @property
    def log(self):
        return self.dir / "postgres.log"

    @property
    def pid_file(self):
        return self.data / "postmaster.pid"

    def run_as_postgres(self, argv, timeout: float = 60) -> None:
        proc.run(self.host.argv(argv, user="postgres"), timeout=timeout, new_session=True)

    def start(self, rec: dict | None = None) -> None:
        """Start the built server (again, after `stop`); return once it accepts connections."""
        argv = [f"{PG_BIN}/pg_ctl", "start", "-D", str(self.data), "-l", str(self.log)]
        try:
            self.run_as_postgres([*argv, "-w", "-t", "60", "-s"], timeout=90)
        except proc.LabError as e:
            raise proc.LabError(f"{self.name}: {e}\n{proc.tail(self.log)}") from None

    def stop(self, rec: dict) -> None:
        """Fast shutdown by pg_ctl, then make sure the postmaster is gone."""
        pid = self.pid()
        if not proc.alive(pid, self.comm):
            return
        argv = [f"{PG_BIN}/pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30"]
        try:
            self.run_as_postgres([*argv, "-s"], timeout=45)
        except proc.LabError:
            pass  # terminate() below escalates to SIGKILL
        proc.terminate(pid, self.comm, self.name)


class PostgresCluster(PostgresServer):
    """A cluster initialised in <part>/data, listening on the host's address (scram-sha-256)
    and on its unix socket (peer)."""

    port = 5432
    checksums = False
    settings: dict[str, str] = {}

    def new_record(self, old: dict, taken: set[int]) -> dict:
        rec = super().new_record(old, taken)
        rec["superuser_password"] = old.get("superuser_password") or new_password()
        return rec

    def build(self, rec: dict) -> None:
        self.initdb(rec)
        self.configure(rec)
        self.start()
        with self.connect(rec, "postgres") as conn:
            self.provision(conn, rec)

    def initdb(self, rec: dict) -> None:
        proc.make_dir(self.dir, owner="postgres", mode=0o700)
        proc.make_dir(self.socket_dir, owner="postgres", mode=0o755)
        pwfile = proc.write_file(
            self.dir / "pwfile", rec["superuser_password"], owner="postgres", mode=0o600
        )
        argv = [f"{PG_BIN}/initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}"]
        argv += ["--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8"]
        argv += ["--locale=C.UTF-8", "--no-instructions"]
        if self.checksums:
            argv.append("--data-checksums")
        try:
            proc.run(self.host.argv(argv, user="postgres"), timeout=120)
        finally:
            pwfile.unlink()

    def configure(self, rec: dict) -> None:
        settings = {
            "listen_addresses": f"'{rec['host']}'",
            "port": str(rec["port"]),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "password_encryption": "'scram-sha-256'",
            "fsync": "off",  # the lab only: a crash of the machine loses the lab anyway
            "max_connections": "100",
            "shared_buffers": "64MB",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            **self.settings,
        }
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# --- dbconsole lab ---\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        hba = (
            "# TYPE  DATABASE     USER  ADDRESS          METHOD\n"
            "local   all          all                    peer\n"
            f"host    all          all   {rec['host']}/32   scram-sha-256\n"
            f"host    replication  all   {rec['host']}/32   scram-sha-256\n"
        )
        proc.write_file(self.data / "pg_hba.conf", hba, owner="postgres", mode=0o600)

    def connect(self, rec: dict, dbname: str) -> psycopg.Connection:
        return psycopg.connect(
            host=rec["host"],
            port=rec["port"],
            user="postgres",
            password=rec["superuser_password"],
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
            application_name="dbconsole-lab",
        )

    def provision(self, conn: psycopg.Connection, rec: dict) -> None:
        """Roles and databases of the part, created once the cluster runs."""


class MetaCluster(PostgresCluster):
    """The console's own metadata database: superuser role `console`, database `console`."""

    name = "meta"
    description = "metadata PostgreSQL"
    settings = {"synchronous_commit": "off", "full_page_writes": "off"}

    def new_record(self, old: dict, taken: set[int]) -> dict:
        rec = super().new_record(old, taken)
        rec["password"] = old.get("password") or new_password()
        return rec

    def provision(self, conn: psycopg.Connection, rec: dict) -> None:
        conn.execute(
            sql.SQL("CREATE ROLE console LOGIN SUPERUSER PASSWORD {}").format(
                sql.Literal(rec["password"])
            )
        )
        conn.execute("CREATE DATABASE console OWNER console")

    def env(self, rec: dict) -> dict[str, str]:
        url = f"postgres://console:{rec['password']}@{rec['host']}:{rec['port']}/console"
        return {"DATABASE_URL": url}
