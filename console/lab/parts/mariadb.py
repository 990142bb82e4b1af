"""MariaDB 10.11 with its own my.cnf (never /etc/mysql) and an admin account `lab_admin`."""

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
skip-name-resolve
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
        install += ["--auth-root-authentication-method=socket", "--skip-test-db"]
        proc.run(self.host.argv(install), timeout=120)
        self.start()
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

    def start(self) -> None:
        argv = ["mariadbd", f"--defaults-file={self.cnf}", "--user=mysql"]
        daemon = proc.spawn(self.host.argv(argv), log=self.dir / "mariadbd.out")
        error_log = self.dir / "log" / "error.log"

        def ready() -> bool:
            if daemon.poll() is not None:
                raise proc.LabError(f"mariadbd exited {daemon.returncode}\n{proc.tail(error_log)}")
            return self.socket.exists() and proc.unix_socket_open(self.socket)

        proc.wait_for(ready, 60, "mariadbd to accept connections")

    def provision(self, rec: dict) -> None:
        # OS root is root@localhost through unix_socket authentication.
        conn = MySQLdb.connect(unix_socket=str(self.socket), user="root", connect_timeout=10)
        try:
            cur = conn.cursor()
            for host in (rec["host"], "localhost"):
                cur.execute(
                    "CREATE USER %s@%s IDENTIFIED BY %s", (rec["user"], host, rec["password"])
                )
                cur.execute(
                    "GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", (rec["user"], host)
                )
            cur.execute(f"CREATE DATABASE {seed.MYSQL_SEED_DATABASE}")  # noqa: S608 (constant)
            for statement in seed.MYSQL_SEED_SQL:
                cur.execute(statement)
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
