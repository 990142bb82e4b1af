"""clusters/hba.py, hba_validate.py, hba_diff.py and hbalint.py without servers: parsing (files
recorded from initdb 15 and the lab's db1), rendering, round trips over random rules, field
validation, lint, diffs and merging.

How PostgreSQL 15 itself reads each tricky line below was checked against a real 15 server's
pg_hba_file_rules view (the lab's db1) while writing the parser."""

import random
from dataclasses import replace
from pathlib import Path

import pytest

from clusters import hba, hba_diff, hba_validate, hbalint
from clusters.hba import Rule

FIXTURES = Path(__file__).parent / "fixtures"


def _rule(**fields) -> Rule:
    base = {"conn_type": "host", "database": "all", "user": "all", "address": "10.0.0.0/8",
            "method": "scram-sha-256"}  # fmt: skip
    return Rule(**{**base, **fields})


# --- Parsing ------------------------------------------------------------------------------------


def test_initdb_file_parses_with_its_comments_kept():
    parsed = hba.parse((FIXTURES / "pg_hba-initdb15.conf").read_text())
    assert parsed.errors == []
    assert [(r.conn_type, r.database, r.address, r.method) for r in parsed.rules] == [
        ("local", "all", "", "peer"),
        ("host", "all", "127.0.0.1/32", "scram-sha-256"),
        ("host", "all", "::1/128", "scram-sha-256"),
        ("local", "replication", "", "peer"),
        ("host", "replication", "127.0.0.1/32", "scram-sha-256"),
        ("host", "replication", "::1/128", "scram-sha-256"),
    ]
    assert parsed.rules[0].comment == '"local" is for Unix domain socket connections only'
    assert parsed.rules[1].comment == "IPv4 local connections:"
    assert parsed.rules[3].comment == (
        "Allow replication connections from localhost, by a user with the\nreplication privilege."
    )
    assert parsed.rules[4].comment == ""
    assert parsed.header.startswith("PostgreSQL Client Authentication Configuration File")
    assert "TYPE  DATABASE        USER" in parsed.header
    assert parsed.lines == [85, 87, 89, 92, 93, 94]


def test_lab_file_parses_and_its_column_title_stays_above_the_first_rule():
    parsed = hba.parse((FIXTURES / "pg_hba-lab-db1.conf").read_text())
    assert [r.user for r in parsed.rules] == ["postgres", "replicator", "all"]
    assert parsed.rules[0].comment.startswith("TYPE")
    assert parsed.lines == [2, 3, 4]


def test_tokenizer_follows_postgresql_15():
    text = (
        'host "a""b","c d" "x,y" all md5\n'  # quotes, doubled quote, comma inside quotes
        "host db1, db2 all all md5\n"  # blanks after a comma continue the list
        "host db1,,db2 all all md5\n"  # empty list elements are skipped
        'host "all" +grp,"+lit",@users.txt all md5 # why\n'
        "host all all 10.0.0.1 255.255.0.0 md5\n"  # address and mask in two fields
        "host all all all \\\n"
        '  ldap ldapserver=x ldapbasedn="dc=a, dc=b"\n'  # continued on the next line
        "# a comment ending with a backslash \\\n"
        "host all all all trust\n"  # ... swallows this line, as in PostgreSQL
        "host all all all md5#no space before the comment\n"
    )
    parsed = hba.parse(text)
    assert parsed.errors == []
    r = parsed.rules
    assert (r[0].database, r[0].user) == ('"a""b","c d"', '"x,y"')
    assert r[1].database == "db1,db2" and r[2].database == "db1,db2"
    assert r[3].database == '"all"'
    assert r[3].user == '+grp,"+lit",@users.txt'
    assert r[3].comment == "why"
    assert (r[4].address, r[4].netmask) == ("10.0.0.1", "255.255.0.0")
    assert r[5].method == "ldap" and r[5].options == (
        ("ldapserver", "x"), ("ldapbasedn", "dc=a, dc=b"),
    )  # fmt: skip
    assert r[6].method == "md5" and r[6].comment.startswith("a comment ending")
    assert len(r) == 7
    assert parsed.lines == [1, 2, 3, 4, 5, 6, 10]


def test_unreadable_lines_are_reported_with_their_number():
    parsed = hba.parse(
        "host all all all md5\ninclude other.conf\nhost all all all\n"
        "host all all all md5 foo\nhost all all 10.0.0.0 md5\n"
    )
    assert [(e.line, e.message) for e in parsed.errors] == [
        (2, "invalid connection type 'include'"),
        (3, "end of line before the authentication method"),
        (4, "not in name=value form: 'foo' (quote a value holding commas or spaces: "
            'ldapbasedn="dc=example, dc=org")'),
        (5, "end of line before the authentication method"),
    ]  # fmt: skip
    assert len(parsed.rules) == 1


# --- Rendering and round trips ------------------------------------------------------------------


def test_render_puts_comments_above_rules_and_numbers_their_lines():
    rules = [_rule(comment="first\nsecond"), _rule(conn_type="local", address="", method="peer")]
    text, lines = hba.render(rules, header="managed by dbconsole", footer="end")
    assert text.splitlines()[lines[0] - 1].startswith("host ")
    assert text.splitlines()[lines[1] - 1].startswith("local ")
    assert text.startswith("# managed by dbconsole\n\n# first\n# second\nhost ")
    assert text.endswith("\n\n# end\n")


NAMES = ["all", "app", "my db", 'we"ird', "a,b", "sameuser", "replication", "x#y", "über"]
ADDRESSES = ["10.0.0.0/8", "192.168.1.7/32", "::1/128", "fe80::/10", "all", "samehost",
             "samenet", ".example.org", "db.example.org"]  # fmt: skip


def _random_names(rnd: random.Random, user: bool) -> str:
    tokens = []
    for _ in range(rnd.randint(1, 3)):
        name = rnd.choice(NAMES)
        kind = rnd.random()
        if user and kind < 0.2:
            tokens.append(hba.Token("+" + name))
        elif kind < 0.3:
            tokens.append(hba.Token("@" + name))
        else:
            tokens.append(hba.Token(name, quoted=rnd.random() < 0.5))
    return hba.render_field(tokens)


def _random_rule(rnd: random.Random) -> Rule:
    conn_type = rnd.choice(hba.CONN_TYPES)
    address = netmask = ""
    if conn_type != "local":
        if rnd.random() < 0.2:
            address, netmask = rnd.choice([("10.1.0.0", "255.255.0.0"), ("::1", "ffff::")])
        else:
            address = rnd.choice(ADDRESSES)
    method = rnd.choice(["trust", "reject", "md5", "ldap", "radius", "ident"])
    options = {
        "ldap": (("ldapserver", "ldap.example.org"), ("ldapbasedn", "dc=example, dc=org"),
                 ("ldapbindpasswd", 'se"cret pw')),
        "radius": (("radiusservers", "r1,r2"), ("radiussecrets", "s")),
        "ident": (("map", "omicron"),),
    }.get(method, ())  # fmt: skip
    comment = rnd.choice(["", "why", "two\nlines", 'with # hash and "quotes"', "a\n\nb"])
    return Rule(conn_type, _random_names(rnd, False), _random_names(rnd, True), address,
                netmask, method, options, comment, rnd.choice(hba.TARGETS))  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_parse_of_render_gives_the_rules_back(seed):
    rnd = random.Random(seed)
    rules = [_random_rule(rnd) for _ in range(rnd.randint(1, 12))]
    header = rnd.choice(["", "managed file", "a\n\nb"])
    footer = rnd.choice(["", "the end"])
    text, lines = hba.render(rules, header, footer)
    parsed = hba.parse(text)
    assert parsed.errors == []
    assert [replace(r, target="both") for r in rules] == parsed.rules
    assert (parsed.header, parsed.footer, parsed.lines) == (header, footer, lines)
    again, _ = hba.render(parsed.rules, parsed.header, parsed.footer)
    assert again == text


def test_render_of_parse_is_stable_for_the_recorded_files():
    for name in ("pg_hba-initdb15.conf", "pg_hba-lab-db1.conf"):
        parsed = hba.parse((FIXTURES / name).read_text())
        text, _ = hba.render(parsed.rules, parsed.header, parsed.footer)
        reparsed = hba.parse(text)
        assert reparsed.rules == parsed.rules
        assert hba.render(reparsed.rules, reparsed.header, reparsed.footer)[0] == text


# --- Validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"conn_type": "hots"}, "conn_type", "Choose one of"),
        ({"database": "db1 db2"}, "database", "separate names with commas"),
        ({"database": '"unclosed'}, "database", "unmatched double quote"),
        ({"database": "a" * 64}, "database", "longer than 63 bytes"),
        ({"user": "+"}, "user", "followed by a role name"),
        ({"user": "app # x"}, "user", "starts a comment"),
        ({"address": "10.0.0.1/33"}, "address", "Invalid CIDR mask /33"),
        ({"address": "10.0.0.300/8"}, "address", "not an IP address"),
        ({"address": "10.0.0.1"}, "netmask", "needs a netmask"),
        ({"address": "10.0.0.1", "netmask": "255.0.255.0"}, "netmask", "contiguous"),
        ({"address": "10.0.0.1", "netmask": "ffff::"}, "netmask", "contiguous IPv4"),
        ({"address": "10.0.0.0/8", "netmask": "255.0.0.0"}, "netmask", "either"),
        ({"address": "bad_host!"}, "address", "is not an IP address with /mask"),
        ({"address": "bad host"}, "address", "is not one IP address"),
        ({"address": "10.0.0.0/8,10.1.0.0/16"}, "address", "is not one IP address"),
        ({"address": ""}, "address", "needs an address"),
        ({"conn_type": "local", "address": "10.0.0.0/8"}, "address", "has no address"),
        ({"method": "MD5"}, "method", "Choose one of"),
        ({"method": "peer"}, "method", "only on local"),
        ({"method": "cert"}, "method", "only on hostssl"),
        ({"conn_type": "local", "address": "", "method": "gss"}, "method", "not supported"),
        ({"options": (("map", "x"),)}, "options", "only valid for method ident"),
        ({"options": (("foo", "1"),)}, "options", "Unknown option 'foo'"),
        ({"options": (("clientcert", "verify-full"),)}, "options", "only valid on hostssl"),
        ({"conn_type": "hostssl", "method": "cert", "options": (("clientcert", "verify-ca"),)},
         "options", "clientcert must be verify-full"),
        ({"method": "ldap", "options": (("ldapserver", "x"),)}, "options", "needs ldapbasedn"),
        ({"method": "ldap", "options": (("ldapserver", "x"), ("ldapbasedn", "b"),
                                        ("ldapprefix", "cn="))}, "options", "cannot be combined"),
        ({"method": "ldap", "options": (("ldapserver", "x"), ("ldapbasedn", "b"),
                                        ("ldapport", "0"))}, "options", "ldapport must be"),
        ({"method": "ldap", "options": (("ldapserver", "x"), ("ldapbasedn", "b"),
                                        ("ldapsearchattribute", "uid"),
                                        ("ldapsearchfilter", "(uid=$username)"))},
         "options", "cannot be used together"),
        ({"method": "radius", "options": (("radiusservers", "a"),)}, "options", "radiussecrets"),
        ({"method": "radius", "options": (("radiusservers", "a"), ("radiussecrets", "s,t"))},
         "options", "one per server (1), not 2"),
        ({"method": "md5", "options": (("include_realm", "0"),)}, "options", "method gss"),
        ({"comment": "ends with \\"}, "comment", "backslash"),
        ({"target": "all"}, "target", "Choose one of"),
    ],
)  # fmt: skip
def test_each_bad_field_is_named(fields, field, fragment):
    errors = hba_validate.validate(_rule(**fields))
    assert field in errors, errors
    assert any(fragment in message for message in errors[field]), errors[field]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"conn_type": "local", "address": "", "method": "peer", "options": (("map", "m"),)},
        {"database": 'db1,"my db",@dbs.txt', "user": '+admins,"+lit",all'},
        {"address": "::1/128"},
        {"address": "10.0.0.1", "netmask": "255.255.255.0"},
        {"address": ".example.org"},
        {"address": "samenet"},
        {"conn_type": "hostssl", "method": "cert", "options": (("clientcert", "verify-full"),)},
        {"conn_type": "hostssl", "options": (("clientcert", "verify-ca"), ("clientname", "DN"))},
        {"method": "ldap", "options": (("ldapserver", "ldap.example.org"),
                                       ("ldapbasedn", "dc=example,dc=org"),
                                       ("ldapsearchattribute", "uid"))},
        {"method": "ldap", "options": (("ldapserver", "x"), ("ldapprefix", "cn="),
                                       ("ldapsuffix", ", dc=example, dc=org"))},
        {"method": "ldap", "options": (("ldapurl", "ldap://x/dc=y?uid?sub"),)},
        {"method": "radius", "options": (("radiusservers", "a,b"), ("radiussecrets", "s"),
                                         ("radiusports", "1812,1813"))},
        {"method": "gss", "conn_type": "hostgssenc", "options": (("include_realm", "0"),
                                                                 ("krb_realm", "EXAMPLE.ORG"))},
        {"method": "sspi", "options": (("compat_realm", "1"),)},
        {"method": "pam", "options": (("pamservice", "postgresql"), ("pam_use_hostname", "1"))},
    ],
)  # fmt: skip
def test_valid_rules_pass(fields):
    assert hba_validate.validate(_rule(**fields)) == {}


def test_parse_options_reads_quoted_values_and_refuses_bare_words():
    assert hba.parse_options('ldapserver=x ldapbasedn="dc=a, dc=b"') == (
        ("ldapserver", "x"), ("ldapbasedn", "dc=a, dc=b"),
    )  # fmt: skip
    # An unquoted comma splits the value, as on the server ("unrecognized option dc").
    split = hba.parse_options("ldapbasedn=dc=a,dc=b")
    assert split == (("ldapbasedn", "dc=a"), ("dc", "b"))
    assert (
        "Unknown option 'dc'."
        in hba_validate.validate(_rule(method="ldap", options=split))["options"]
    )
    with pytest.raises(hba.FieldError, match="name=value"):
        hba.parse_options("ldapserver=x foo")


def test_normalise_writes_fields_in_canonical_form():
    rule = hba_validate.normalise(
        _rule(database=' db1,  "db2"', user='"all"', address='"10.0.0.0/8"')
    )
    assert (rule.database, rule.user, rule.address) == ("db1,db2", '"all"', "10.0.0.0/8")


# --- Lint ---------------------------------------------------------------------------------------


def _codes(rules) -> list[tuple[int, str]]:
    return [(f.position, f.code) for f in hbalint.lint(rules)]


def test_lint_names_risky_methods_and_open_addresses():
    rules = [
        _rule(database="app0", method="trust"),
        _rule(database="app", method="password"),
        _rule(database="app2", method="md5"),
        _rule(database="app3", address="0.0.0.0/0"),
        _rule(database="app4", address="::/0"),
        _rule(database="app5", address="all", method="reject"),
        _rule(conn_type="local", address="", database="app6", method="trust"),
    ]
    assert _codes(rules) == [
        (0, "trust-network"), (1, "password-network"), (2, "md5"), (3, "open-world"),
        (4, "open-world"),
    ]  # fmt: skip
    assert "anyone who reaches" in hbalint.lint(rules)[0].message


def test_lint_finds_shadowed_rules():
    rules = [
        _rule(database="all", user="all", address="10.0.0.0/8"),
        _rule(database="app", user="+team", address="10.1.0.0/16", method="reject"),  # shadowed
        _rule(database="replication", user="all", address="10.1.0.0/16"),  # all != replication
        _rule(conn_type="hostssl", address="10.2.0.0", netmask="255.255.0.0"),  # host covers ssl
        _rule(conn_type="local", address="", method="peer"),  # another connection type
        _rule(address="192.168.0.0/16"),
        _rule(address="192.168.0.0/24", target="standbys"),  # shadowed by a both rule
    ]
    assert _codes(rules) == [(1, "shadowed"), (3, "shadowed"), (6, "shadowed")]
    assert "rule 1 above" in hbalint.lint(rules)[0].message


def test_rules_for_different_nodes_do_not_shadow_each_other():
    rules = [_rule(target="primary"), _rule(target="standbys", method="reject")]
    assert _codes(rules) == []


# --- Comparing and merging ----------------------------------------------------------------------


def test_secret_option_values_are_masked_in_diffs():
    old, _ = hba.render([_rule()])
    new, _ = hba.render([_rule(method="ldap", options=(
        ("ldapserver", "x"), ("ldapbasedn", "b"), ("ldapbindpasswd", "hunter2 x"),
    ))])  # fmt: skip
    diff = hba_diff.unified_diff(old, new, "db1 (now)", "db1 (console)")
    assert "hunter2" not in diff and "ldapbindpasswd=********" in diff
    assert diff.startswith("--- db1 (now)\n+++ db1 (console)")
    assert hba_diff.unified_diff(old, old, "a", "b") == ""


def test_rule_changes_ignore_comments_and_say_what_differs():
    a, b, c = _rule(database="a"), _rule(database="b"), _rule(database="c")
    assert hba_diff.rule_changes([a, b], [replace(a, comment="x"), b]) == []
    assert hba_diff.rule_changes([a, b], [a, b, c]) == [
        "missing on the node: host c all 10.0.0.0/8 scram-sha-256"
    ]
    assert hba_diff.rule_changes([a, c, b], [a, b]) == [
        "only on the node: host c all 10.0.0.0/8 scram-sha-256"
    ]
    (moved,) = hba_diff.rule_changes([b, a], [a, b])
    assert moved.startswith("moved: host ")


def test_merge_gives_common_rules_to_both_and_the_rest_to_their_node():
    a, b, p, s = (_rule(database=d) for d in ("a", "b", "p", "s"))
    merged = hba_diff.merge_nodes([a, p, b], [a, s, b])
    assert [(r.database, r.target) for r in merged] == [
        ("a", "both"), ("p", "primary"), ("s", "standbys"), ("b", "both"),
    ]  # fmt: skip
    assert [r.database for r in hba.for_role(merged, "primary")] == ["a", "p", "b"]
    assert [r.database for r in hba.for_role(merged, "standby")] == ["a", "s", "b"]
