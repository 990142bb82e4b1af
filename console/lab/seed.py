"""What the lab's servers hold when they start. Plaintext passwords live here for tests only;
the directory stores {SSHA} hashes of them.

LAB_PEOPLE: the directory's people (uid, cn, given_name, sn, mail, password, groups). Persona
groups are dba, helpdesk, manager and auditor; team-* groups are application teams.
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
]

LAB_GROUPS: list[str] = ["dba", "helpdesk", "manager", "auditor", "team-billing", "team-web"]


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


# The managed PostgreSQL (`pg` part) and MariaDB (`mariadb` part) each hold a small database.
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
