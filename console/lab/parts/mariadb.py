"""MariaDB 10.11 on my1, as mariadb-install-db leaves it (not hardened), plus the lab's seed.

Unhardened as a fresh install is: local_infile ON, the anonymous accounts and the test database
that mariadb-install-db creates, root by unix_socket. Its own my.cnf (never /etc/mysql). Added:
an admin account `lab_admin`@`%` (LAB_MYSQL_*), and the seed of seed.py: personal accounts of
directory people, functional accounts, one orphan, the application databases. MariaDB has no
comment on a user, so owners are rows of dba_inventory.account_owner.
"""

import re

import MySQLdb

from console.lab import proc, seed
from console.lab.part import Part, new_password

MY_CNF = """\
[client]
socket = {socket}

[mysqld]
user = mysql
datadir = {data}
socket = {socket}
pid-file = {pid_file}
port = {port}
bind-address = {host}
log-error = {log_dir}/error.log
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
innodb_buffer_pool_size = 64M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 0
performance_schema = OFF
max_connections = 100
"""


class MariaDB(Part):
    name = "mariadb"
    comm = "mariadbd"
    description = "MariaDB"
    port = 3306

    @property
    def pid_file(self):
        return self.dir / "run" / "mariadbd.pid"

    @property
    def socket(self):
        return self.dir / "run" / "mysqld.sock"

    @property
    def cnf(self):
        return self.dir / "my.cnf"

    def new_record(self, old: dict, taken: set[int]) -> dict:
        rec = super().new_record(old, taken)
        rec["user"] = "lab_admin"
        rec["password"] = old.get("password") or new_password()
        return rec

    def build(self, rec: dict) -> None:
        proc.make_dir(self.dir)
        for sub, mode in (("data", 0o750), ("run", 0o755), ("log", 0o750)):
            proc.make_dir(self.dir / sub, owner="mysql", mode=mode)
        proc.write_file(self.cnf, self.render_cnf(rec))
        install = ["mariadb-install-db", f"--defaults-file={self.cnf}", "--user=mysql"]
        install += ["--auth-root-authentication-method=socket"]
        # On the host, so that the accounts it makes for the hostname name my1. Its bootstrap
        # server writes why it failed to log-error, not to the output (a generic text).
        try:
            proc.run(self.host.argv(install, uts=True), timeout=120)
        except proc.LabError as e:
            reason = proc.tail(self.dir / "log" / "error.log")
            raise proc.LabError(f"{str(e)[:300]}\nits error log:\n{reason}") from None
        self.start(rec)
        self.provision(rec)

    def render_cnf(self, rec: dict) -> str:
        return MY_CNF.format(
            socket=self.socket,
            data=self.dir / "data",
            pid_file=self.pid_file,
            port=rec["port"],
            host=rec["host"],
            log_dir=self.dir / "log",
        )

    def start(self, rec: dict | None = None) -> None:
        argv = ["mariadbd", f"--defaults-file={self.cnf}", "--user=mysql"]
        daemon = proc.spawn(self.host.argv(argv, uts=True), log=self.dir / "mariadbd.out")
        error_log = self.dir / "log" / "error.log"

        def ready() -> bool:
            if daemon.poll() is not None:
                raise proc.LabError(f"mariadbd exited {daemon.returncode}\n{proc.tail(error_log)}")
            return self.socket.exists() and proc.unix_socket_open(self.socket)

        proc.wait_for(ready, 60, "mariadbd to accept connections")

    def provision(self, rec: dict) -> None:
        # OS root is root@localhost through unix_socket authentication.
        conn = MySQLdb.connect(
            unix_socket=str(self.socket), user="root", connect_timeout=10, charset="utf8mb4"
        )
        try:
            cur = conn.cursor()
            for host in ("%", "localhost"):
                cur.execute(
                    "CREATE USER %s@%s IDENTIFIED BY %s", (rec["user"], host, rec["password"])
                )
                cur.execute(
                    "GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", (rec["user"], host)
                )
            for statement, params in seed_statements():
                cur.execute(statement, params or None)
            conn.commit()
        finally:
            conn.close()

    def env(self, rec: dict) -> dict[str, str]:
        return {
            "LAB_MYSQL_HOST": rec["host"],
            "LAB_MYSQL_PORT": str(rec["port"]),
            "LAB_MYSQL_USER": rec["user"],
            "LAB_MYSQL_PASSWORD": rec["password"],
        }


def quote_name(name: str) -> str:
    """A seed database name in backticks; only plain lowercase names are seeded."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        raise ValueError(f"not a plain database name: {name!r}")
    return f"`{name}`"


def seed_statements() -> list[tuple[str, tuple]]:
    """(statement, parameters) that load seed.py's databases and accounts into a fresh server."""
    out: list[tuple[str, tuple]] = [(f"CREATE DATABASE {seed.MYSQL_SEED_DATABASE}", ())]
    out += [(statement, ()) for statement in seed.MYSQL_SEED_SQL]
    for database, statements in seed.SEED_DATABASES.items():
        out.append((f"CREATE DATABASE {quote_name(database)} DEFAULT CHARSET utf8mb4", ()))
        out.append((f"USE {quote_name(database)}", ()))
        out += [(statement, ()) for statement in statements]
    out.append(("CREATE DATABASE dba_inventory DEFAULT CHARSET utf8mb4", ()))
    out.append((ACCOUNT_OWNER_TABLE, ()))
    for user, grants, owner_team, owner_uid, note in seed_accounts():
        out.append(("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, seed.SEED_DB_PASSWORDS[user])))
        for privileges, database in grants:
            on = "*.*" if database == "*" else f"{quote_name(database)}.*"
            out.append((f"GRANT {privileges} ON {on} TO %s@'%%'", (user,)))
        out.append(
            (
                "INSERT INTO dba_inventory.account_owner VALUES (%s, '%%', %s, %s, %s)",
                (user, owner_team, owner_uid, note),
            )
        )
    return out


ACCOUNT_OWNER_TABLE = (
    "CREATE TABLE dba_inventory.account_owner (user VARCHAR(128) NOT NULL,"
    " host VARCHAR(255) NOT NULL, owner_team VARCHAR(64), owner_uid VARCHAR(64),"
    " note VARCHAR(200), PRIMARY KEY (user, host))"
)
READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"


def seed_accounts() -> list[tuple[str, list[tuple[str, str]], str | None, str | None, str]]:
    """(user, [(privileges, database or *)], owner team, owner uid, note) for every seeded
    account: DBAs get everything, team members read-write on their teams' databases."""
    team_database = {a["owner_team"]: a["database"] for a in seed.SEED_FUNCTIONAL_ACCOUNTS}
    accounts = []
    for uid in seed.SEED_PERSONAL_ACCOUNTS:
        groups = seed.person(uid)["groups"]
        if "dba" in groups:
            grants = [("ALL PRIVILEGES", "*")]
        else:
            grants = [(READ_WRITE, team_database[g]) for g in groups if g in team_database]
        accounts.append((uid, grants, None, uid, "personal account"))
    for account in seed.SEED_FUNCTIONAL_ACCOUNTS:
        privileges = "SELECT" if account["read_only"] else READ_WRITE
        grants = [(privileges, account["database"])]
        note = f"application account of {account['owner_team']}"
        accounts.append((account["name"], grants, account["owner_team"], None, note))
    orphan_grants = [("SELECT", seed.SEED_ORPHAN_DATABASE)]
    accounts.append((seed.SEED_ORPHAN, orphan_grants, None, seed.SEED_ORPHAN, "contractor"))
    return accounts
