"""The statements that put console/lab/seed.py's database accounts and databases on db1.

- Personal accounts (SEED_PERSONAL_ACCOUNTS): login roles named as the person's uid; members of
  the dba group also get pg_monitor.
- Functional accounts (SEED_FUNCTIONAL_ACCOUNTS): login roles with their owner and purpose in
  `COMMENT ON ROLE ... IS 'owner=team-billing; purpose=...'`. A read-write account owns its
  database and the tables in it; a read-only one gets CONNECT and SELECT on a database owned by
  postgres.
- The orphan (SEED_ORPHAN): a login with no comment and no directory person, still able to read
  SEED_ORPHAN_DATABASE, as a leaver's forgotten account is.
- `appdb` with `customers` (3 rows), which older tests expect (seed.PG_SEED_SQL).

Every identifier goes through sql.Identifier and every value through sql.Literal.
"""

from psycopg import sql

from console.lab import seed

Statement = sql.Composable


def purpose(account: dict) -> str:
    access = "read-only access to" if account["read_only"] else "application owning"
    return f"{access} database {account['database']}"


def owner(database: str) -> str:
    """The role owning `database`: its read-write functional account, else postgres."""
    for account in seed.SEED_FUNCTIONAL_ACCOUNTS:
        if account["database"] == database and not account["read_only"]:
            return account["name"]
    return "postgres"


def role_statements() -> list[Statement]:
    """CREATE ROLE, COMMENT and GRANT statements of every seed login, for any database."""
    statements: list[Statement] = []
    logins = [
        *seed.SEED_PERSONAL_ACCOUNTS,
        *(account["name"] for account in seed.SEED_FUNCTIONAL_ACCOUNTS),
        seed.SEED_ORPHAN,
    ]
    for role in logins:
        statements.append(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(seed.SEED_DB_PASSWORDS[role])
            )
        )
    for account in seed.SEED_FUNCTIONAL_ACCOUNTS:
        comment = f"owner={account['owner_team']}; purpose={purpose(account)}"
        statements.append(
            sql.SQL("COMMENT ON ROLE {} IS {}").format(
                sql.Identifier(account["name"]), sql.Literal(comment)
            )
        )
    for uid in seed.SEED_PERSONAL_ACCOUNTS:
        if "dba" in seed.person(uid)["groups"]:
            statements.append(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(uid)))
    return statements


def create_database(database: str) -> Statement:
    return sql.SQL("CREATE DATABASE {} OWNER {}").format(
        sql.Identifier(database), sql.Identifier(owner(database))
    )


def inside_database(database: str) -> list[Statement]:
    """Statements run in `database` as postgres, in one transaction: the tables and rows are
    created as the database's owner; readers get CONNECT and SELECT."""
    statements: list[Statement] = [sql.SQL("SET ROLE {}").format(sql.Identifier(owner(database)))]
    statements += [sql.SQL(text) for text in seed.SEED_DATABASES[database]]  # type: ignore[arg-type]
    statements.append(sql.SQL("RESET ROLE"))
    readers = [
        account["name"]
        for account in seed.SEED_FUNCTIONAL_ACCOUNTS
        if account["database"] == database and account["read_only"]
    ]
    if database == seed.SEED_ORPHAN_DATABASE:
        readers.append(seed.SEED_ORPHAN)
    for reader in readers:
        statements.append(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(reader)
            )
        )
        statements.append(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(reader)
            )
        )
    return statements


def pool_passwd_users() -> list[str]:
    """The users that log in through pgpool (each needs a pool_passwd entry for SCRAM)."""
    return [account["name"] for account in seed.SEED_FUNCTIONAL_ACCOUNTS]
