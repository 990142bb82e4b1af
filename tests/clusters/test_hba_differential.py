# ruff: noqa: F811 (the lab fixture lab_files comes from tests/clusters/_hba_lab.py)
"""The renderer against PostgreSQL's own parser: random rules rendered into the lab's db1 file
and read back through pg_hba_file_rules (never loaded). The lab's file is put back after."""

import os

import pytest

from clusters import hba, hba_validate
from tests.clusters._hba_lab import _files, _hosts, _superuser, lab_files  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_postgresql_reads_rendered_rules_as_the_console_means_them(lab_files):
    """Differential check of the renderer against PostgreSQL's own parser: random rules
    (quoted names, keywords, groups, lists, CIDR and netmask addresses, host names, options
    with spaces and commas) rendered into db1's file, read back through pg_hba_file_rules.
    The file is never loaded (no reload) and the lab's file is put back afterwards."""
    import ipaddress
    import random

    rnd = random.Random(15)
    names = ["app", "my db", 'we"ird', "a,b", "x#y", "über", "all", "replication", "+grp"]

    def field(user: bool) -> tuple[str, list[str]]:
        tokens = []
        for _ in range(rnd.randint(1, 3)):
            name = rnd.choice(names)
            if name == "+grp" and not user:
                name = "grp"
            tokens.append(
                hba.Token(name, quoted=name in ("all", "replication") and rnd.random() < 0.5)
            )
        return hba.render_field(tokens), [t.text for t in tokens]

    addresses = ["10.0.0.0/8", "192.168.1.7/32", "::1/128", "all", "samenet", ".example.org",
                 ("10.1.0.0", "255.255.0.0")]  # fmt: skip
    rules, expected = [], []
    for _ in range(40):
        conn_type = rnd.choice(["local", "host", "hostnossl", "hostgssenc", "hostnogssenc"])
        (database, dbs), (user, users) = field(False), field(True)
        address = netmask = ""
        if conn_type != "local":
            choice = rnd.choice(addresses)
            address, netmask = choice if isinstance(choice, tuple) else (choice, "")
        method = rnd.choice(["trust", "reject", "md5", "scram-sha-256", "ldap"])
        options = ()
        if method == "ldap":
            options = (("ldapserver", "ldap.example.org"), ("ldapbasedn", "dc=example, dc=org"),
                       ("ldapbindpasswd", 'pw "x", y'))  # fmt: skip
        rule = hba.Rule(conn_type, database, user, address, netmask, method, options)
        assert hba_validate.validate(rule) == {}, rule
        rules.append(rule)
        expected.append((conn_type, dbs, users, address, netmask, method, options))
    text, lines = hba.render(rules, header="differential test")
    _files(os.environ)["db1"].write_text(text)
    with _superuser(_hosts()["db1"]) as conn:
        rows = conn.execute(
            "SELECT line_number, type, database, user_name, address, netmask, auth_method, "
            "options, error FROM pg_hba_file_rules ORDER BY line_number"
        ).fetchall()
    assert [r[0] for r in rows] == lines
    for row, (conn_type, dbs, users, address, netmask, method, options) in zip(
        rows, expected, strict=True
    ):
        assert row[8] is None, row
        assert (row[1], row[2], row[3], row[6]) == (conn_type, dbs, users, method)
        if "/" in address:
            network = ipaddress.ip_network(address, strict=False)
            assert (row[4], row[5]) == (str(network.network_address), str(network.netmask))
        elif conn_type != "local":
            assert (row[4], row[5] or "") == (address, netmask)
        assert all(f"{k}={v}" in (row[7] or []) for k, v in options)
