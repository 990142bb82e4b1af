"""Direct connections to the lab's servers for the lifecycle tests: the test sets up and checks
the server itself (the console goes through its executor only). Every role or user a test
creates is dropped by `Cleanup` at the end, also when the test fails (the `cleanup` fixture of
conftest.py). With the helpers the account tests share: a role or user created on the server
(`pg_create`, `my_create`) and its console row (`pg_account`, `my_account`)."""

import MySQLdb
import psycopg
from psycopg import sql

from console.executor.sql import quote_mysql_account

EVIL = 'x"; DROP TABLE t; --'
PASSWORD = "Corr3ct horse 'battery' staple"


def pg_admin(env) -> psycopg.Connection:
    return psycopg.connect(
        host=env["LAB_PG_HOST"],
        port=int(env["LAB_PG_PORT"]),
        user=env["LAB_PG_USER"],
        password=env["LAB_PG_PASSWORD"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
        sslmode="disable",
    )


def pg_login(env, role: str, password: str, dbname: str = "postgres", host: str = ""):
    """A session as `role` (the caller closes it); raises psycopg.OperationalError if refused.
    `host`: another server of the cluster (the standby) than the primary."""
    return psycopg.connect(
        host=host or env["LAB_PG_HOST"],
        port=int(env["LAB_PG_PORT"]),
        user=role,
        password=password,
        dbname=dbname,
        autocommit=True,
        connect_timeout=5,
        sslmode="disable",
    )


def pg_can_login(env, role: str, password: str) -> bool:
    try:
        pg_login(env, role, password).close()
    except psycopg.OperationalError:
        return False
    return True


def my_admin(env) -> MySQLdb.Connection:
    conn = MySQLdb.connect(
        host=env["LAB_MYSQL_HOST"],
        port=int(env["LAB_MYSQL_PORT"]),
        user=env["LAB_MYSQL_USER"],
        password=env["LAB_MYSQL_PASSWORD"],
        connect_timeout=5,
        charset="utf8mb4",
    )
    conn.autocommit(True)
    return conn


def my_login(env, user: str, password: str) -> MySQLdb.Connection:
    return MySQLdb.connect(
        host=env["LAB_MYSQL_HOST"],
        port=int(env["LAB_MYSQL_PORT"]),
        user=user,
        password=password,
        connect_timeout=5,
        charset="utf8mb4",
    )


def my_can_login(env, user: str, password: str) -> bool:
    try:
        my_login(env, user, password).close()
    except MySQLdb.OperationalError:
        return False
    return True


class Cleanup:
    """Drops what a test created on the lab servers: PostgreSQL roles (their objects reassigned
    to the admin first), databases, MariaDB accounts and databases."""

    def __init__(self, env):
        self.env = env
        self.pg_roles: list[str] = []
        self.pg_databases: list[str] = []
        self.my_accounts: list[tuple[str, str]] = []
        self.my_databases: list[str] = []

    def run(self) -> None:
        if self.pg_roles or self.pg_databases:
            with pg_admin(self.env) as conn:
                for db in self.pg_databases:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(db)))  # fmt: skip
                for role in self.pg_roles:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
                    ).fetchone()
                    if not exists:
                        continue
                    conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                        (role,),
                    )
                    ident = sql.Identifier(role)
                    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(ident))
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
                    conn.execute(sql.SQL("DROP ROLE {}").format(ident))
        if self.my_accounts or self.my_databases:
            conn = my_admin(self.env)
            try:
                cur = conn.cursor()
                for user, host in self.my_accounts:
                    cur.execute("DROP USER IF EXISTS " + quote_mysql_account(user, host), ())
                for db in self.my_databases:
                    cur.execute("DROP DATABASE IF EXISTS `" + db.replace("`", "``") + "`")
            finally:
                conn.close()


def pg_account(demo, name: str):
    """The console's row of role `name` on the lab's PostgreSQL cluster (db1)."""
    from users.models import DatabaseAccount

    cluster = demo["lab-pg"]
    return DatabaseAccount.objects.create(
        cluster=cluster, node=cluster.nodes.get(name="db1"), name=name
    )


def my_account(demo, name: str, host: str = "%"):
    """The console's row of user `name`@`host` on the lab's MariaDB (my1)."""
    from users.models import DatabaseAccount

    cluster = demo["lab-mariadb"]
    return DatabaseAccount.objects.create(
        cluster=cluster, node=cluster.nodes.get(name="my1"), name=name, host=host
    )


def pg_create(env, cleanup, name: str, password: str = PASSWORD, login=True) -> None:
    cleanup.pg_roles.append(name)
    with pg_admin(env) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(
                sql.Identifier(name),
                sql.SQL("LOGIN" if login else "NOLOGIN"),
                sql.Literal(password),
            )
        )


def my_create(env, cleanup, name: str, host: str = "%", password: str = PASSWORD) -> None:
    cleanup.my_accounts.append((name, host))
    conn = my_admin(env)
    try:
        conn.cursor().execute(
            "CREATE USER " + quote_mysql_account(name, host) + " IDENTIFIED BY %s", (password,)
        )
    finally:
        conn.close()
