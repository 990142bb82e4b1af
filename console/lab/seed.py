"""What the lab's servers hold when they start. Plaintext passwords live here for tests only;
the directory stores {SSHA} hashes of them.

LAB_PEOPLE: the directory's people (uid, cn, given_name, sn, mail, password, groups). Persona
groups are dba, helpdesk, manager and auditor; team-* groups are application teams.

Database accounts, the same on db1 (PostgreSQL) and my1 (MariaDB):
- SEED_PERSONAL_ACCOUNTS: directory uids that have a personal login (role / user named as the uid).
- SEED_FUNCTIONAL_ACCOUNTS: application logins, each owned by a team and using one database.
- SEED_ORPHAN: a login whose person left the directory (no LAB_PEOPLE entry): offboarding finds it.
- SEED_DATABASES: the application databases with a table and a few rows each.
Where an owner is written: PostgreSQL has COMMENT ON ROLE; MariaDB has no comment on a user, so
the owner goes into the table dba_inventory.account_owner (user, host, owner_team, purpose), as a
DBA team keeps it by hand. Passwords (SEED_DB_PASSWORDS) are for tests only.
"""

LDAP_BASE = "dc=example,dc=org"
LDAP_ADMIN_DN = f"cn=admin,{LDAP_BASE}"
LDAP_PEOPLE_BASE = f"ou=people,{LDAP_BASE}"
LDAP_GROUPS_BASE = f"ou=groups,{LDAP_BASE}"

LAB_PEOPLE: list[dict] = [
    {
        "uid": "alice",
        "cn": "Alice Archer",
        "given_name": "Alice",
        "sn": "Archer",
        "mail": "alice@example.org",
        "password": "alice-Lab-pw-1",
        "groups": ["dba"],
    },
    {
        "uid": "bob",
        "cn": "Bob Baker",
        "given_name": "Bob",
        "sn": "Baker",
        "mail": "bob@example.org",
        "password": "bob-Lab-pw-2",
        "groups": ["helpdesk"],
    },
    {
        "uid": "carol",
        "cn": "Carol Clark",
        "given_name": "Carol",
        "sn": "Clark",
        "mail": "carol@example.org",
        "password": "carol-Lab-pw-3",
        "groups": ["manager"],
    },
    {
        "uid": "dave",
        "cn": "Dave Dunn",
        "given_name": "Dave",
        "sn": "Dunn",
        "mail": "dave@example.org",
        "password": "dave-Lab-pw-4",
        "groups": ["auditor"],
    },
    {
        "uid": "erin",
        "cn": "Erin Evans",
        "given_name": "Erin",
        "sn": "Evans",
        "mail": "erin@example.org",
        "password": "erin-Lab-pw-5",
        "groups": ["team-billing"],
    },
    {
        "uid": "zoe",
        "cn": "Zoë Ångström",
        "given_name": "Zoë",
        "sn": "Ångström",
        "mail": "zoe@example.org",
        "password": "zoe-Lab-pw-6",
        "groups": ["dba", "team-web"],
    },
    {
        "uid": "obrien",
        "cn": "Seán O'Brien",
        "given_name": "Seán",
        "sn": "O'Brien",
        "mail": "sean.obrien@example.org",
        "password": "obrien-Lab-pw-7",
        "groups": ["helpdesk", "team-billing"],
    },
    {
        "uid": "edubois",
        "cn": "Émile Dubois",
        "given_name": "Émile",
        "sn": "Dubois",
        "mail": "emile.dubois@example.org",
        "password": "edubois-Lab-pw-8",
        "groups": ["team-web"],
    },
    {
        "uid": "jgross",
        "cn": "Jürgen Groß",
        "given_name": "Jürgen",
        "sn": "Groß",
        "mail": "juergen.gross@example.org",
        "password": "jgross-Lab-pw-9",
        "groups": ["dba"],
    },
    {
        "uid": "imartin",
        "cn": "Inès Martín",
        "given_name": "Inès",
        "sn": "Martín",
        "mail": "ines.martin@example.org",
        "password": "imartin-Lab-pw-10",
        "groups": ["team-analytics"],
    },
    {
        "uid": "nhaddad",
        "cn": "Nadia Haddad",
        "given_name": "Nadia",
        "sn": "Haddad",
        "mail": "nadia.haddad@example.org",
        "password": "nhaddad-Lab-pw-11",
        "groups": ["manager", "team-analytics"],
    },
    {
        "uid": "lnguyen",
        "cn": "Linh Nguyễn",
        "given_name": "Linh",
        "sn": "Nguyễn",
        "mail": "linh.nguyen@example.org",
        "password": "lnguyen-Lab-pw-12",
        "groups": ["auditor"],
    },
    {
        "uid": "tkowalski",
        "cn": "Tomasz Kowalski",
        "given_name": "Tomasz",
        "sn": "Kowalski",
        "mail": "tomasz.kowalski@example.org",
        "password": "tkowalski-Lab-pw-13",
        "groups": ["team-billing", "team-web"],
    },
]

LAB_GROUPS: list[str] = [
    "dba",
    "helpdesk",
    "manager",
    "auditor",
    "team-billing",
    "team-web",
    "team-analytics",
]


def person(uid: str) -> dict:
    """The seed person with this uid (KeyError when there is none)."""
    for entry in LAB_PEOPLE:
        if entry["uid"] == uid:
            return entry
    raise KeyError(uid)


def person_dn(uid: str) -> str:
    return f"uid={uid},{LDAP_PEOPLE_BASE}"


def group_dn(name: str) -> str:
    return f"cn={name},{LDAP_GROUPS_BASE}"


# The PostgreSQL primary (db1) and MariaDB (my1) each also hold this small database `appdb`.
PG_SEED_DATABASE = "appdb"
PG_SEED_SQL = [
    "CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, email text)",
    "INSERT INTO customers VALUES (1, 'Ada', 'ada@example.org'), (2, 'Brian', NULL),"
    " (3, 'Chloé', 'chloe@example.org')",
]
MYSQL_SEED_DATABASE = "appdb"
MYSQL_SEED_SQL = [
    "CREATE TABLE appdb.customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL,"
    " email VARCHAR(200)) DEFAULT CHARSET=utf8mb4",
    "INSERT INTO appdb.customers VALUES (1, 'Ada', 'ada@example.org'), (2, 'Brian', NULL),"
    " (3, 'Chloé', 'chloe@example.org')",
]


# Database accounts on db1 and my1 (see the module docstring).
SEED_PERSONAL_ACCOUNTS: list[str] = ["alice", "zoe", "jgross", "erin", "obrien", "imartin"]
SEED_FUNCTIONAL_ACCOUNTS: list[dict] = [
    {
        "name": "billing_app",
        "owner_team": "team-billing",
        "database": "billing",
        "read_only": False,
    },
    {"name": "web_app", "owner_team": "team-web", "database": "webshop", "read_only": False},
    {
        "name": "analytics_ro",
        "owner_team": "team-analytics",
        "database": "analytics",
        "read_only": True,
    },
]
SEED_ORPHAN = "old_contractor"  # left the company; their login is still there
SEED_ORPHAN_DATABASE = "billing"
SEED_DB_PASSWORDS: dict[str, str] = {
    **{uid: f"{uid}-Db-pw" for uid in SEED_PERSONAL_ACCOUNTS},
    **{account["name"]: f"{account['name']}-Db-pw" for account in SEED_FUNCTIONAL_ACCOUNTS},
    SEED_ORPHAN: f"{SEED_ORPHAN}-Db-pw",
}

# database -> statements that create its table and rows (portable to PostgreSQL and MariaDB).
SEED_DATABASES: dict[str, list[str]] = {
    "billing": [
        "CREATE TABLE invoices (id integer PRIMARY KEY, customer varchar(100) NOT NULL,"
        " amount_cents integer NOT NULL, paid boolean NOT NULL DEFAULT false)",
        "INSERT INTO invoices VALUES (1, 'Ada', 12000, true), (2, 'Brian', 4550, false),"
        " (3, 'Chloé', 99900, false)",
    ],
    "webshop": [
        "CREATE TABLE products (sku varchar(20) PRIMARY KEY, title varchar(200) NOT NULL,"
        " price_cents integer NOT NULL)",
        "INSERT INTO products VALUES ('TEA-1', 'Thé vert', 450), ('MUG-2', 'Mug', 900),"
        " ('PEN-3', 'Stylo', 150)",
    ],
    "analytics": [
        "CREATE TABLE page_views (day date NOT NULL, page varchar(200) NOT NULL,"
        " views integer NOT NULL, PRIMARY KEY (day, page))",
        "INSERT INTO page_views VALUES ('2024-01-01', '/', 120), ('2024-01-01', '/shop', 45),"
        " ('2024-01-02', '/', 98)",
    ],
}


def functional_account(name: str) -> dict:
    """The seed functional account with this name (KeyError when there is none)."""
    for account in SEED_FUNCTIONAL_ACCOUNTS:
        if account["name"] == name:
            return account
    raise KeyError(name)
