"""clusters/mycnf.py: reading and editing option files, against real files and the server's reader.

Fixtures are real (tests/clusters/fixtures/mycnf/README.md); where my_print_defaults is installed,
the parser is also compared with it live.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from clusters import mycnf

FIXTURES = Path(__file__).parent / "fixtures" / "mycnf"
DEBIAN_MAIN = (FIXTURES / "debian-mariadb.cnf").read_text()
DEBIAN_SERVER = (FIXTURES / "debian-50-server.cnf").read_text()
TRICKY = (FIXTURES / "tricky.cnf").read_text()

LAB_LIKE = """\
[client]
socket = /run/mysqld/mysqld.sock

[mysqld]
user = mysql
port = 3306
max_connections = 100
"""


def test_names_compare_with_dash_and_underscore_equal():
    text = "[mysqld]\nlocal_infile = 1\n"
    assert mycnf.get_option(text, "mysqld", "local-infile") == "1"
    assert mycnf.get_option(text, "mysqld", "local_infile") == "1"
    assert mycnf.get_option(text, "mysqld", "LOCAL_INFILE") is None  # names are case-sensitive


def test_group_names_are_case_insensitive_and_occurrences_add_up():
    # The server's reader joins [mysqld] and [MySQLd]: key_buffer_size is in the same group.
    assert mycnf.get_option(TRICKY, "mysqld", "key_buffer_size") == "1M"
    assert mycnf.get_option(TRICKY, "MYSQLD", "local_infile") == "0"  # skip-local-infile is later


def test_missing_option_group_and_other_group():
    assert mycnf.get_option(LAB_LIKE, "mysqld", "local_infile") is None
    assert mycnf.get_option(LAB_LIKE, "mysqld", "socket") is None  # only in [client]
    assert mycnf.get_option(LAB_LIKE, "client", "socket") == "/run/mysqld/mysqld.sock"
    assert mycnf.get_option(LAB_LIKE, "galera", "port") is None


def test_values_read_as_the_servers_reader_does():
    """Every option of tricky.cnf reads as my_print_defaults printed it (recorded)."""
    recorded = mycnf.parse_print_defaults((FIXTURES / "tricky.print-defaults.txt").read_text())
    recorded = dict(recorded)
    ours = {o.name: o.value for o in mycnf.parse(TRICKY)}
    for name in ("init-connect", "plugin-dir", "quoted-escape", "empty", "one_quote"):
        assert ours[name] == recorded[name], name
    assert ours["init-connect"] == "SET NAMES utf8 # not a comment"
    assert ours["plugin-dir"] == "/usr/lib/my plugins"
    assert ours["local_infile"] == "1"  # its end comment is not part of it
    assert ours["path"] == "C:\new\table \\x"  # \n \t \s escapes; \x unknown keeps its backslash
    assert ours["bare-with-space-after"] is None


@pytest.mark.skipif(not shutil.which("my_print_defaults"), reason="my_print_defaults not installed")
def test_parser_agrees_with_my_print_defaults_live(tmp_path):
    sample = tmp_path / "my.cnf"
    sample.write_text(TRICKY)
    out = subprocess.run(
        ["my_print_defaults", f"--defaults-file={sample}", "mysqld"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out == (FIXTURES / "tricky.print-defaults.txt").read_text()


def test_prefixed_forms_and_bare_booleans():
    assert mycnf.get_option("[mysqld]\nskip-local-infile\n", "mysqld", "local_infile") == "0"
    assert mycnf.get_option("[mysqld]\ndisable-local-infile\n", "mysqld", "local_infile") == "0"
    assert mycnf.get_option("[mysqld]\nenable-local-infile\n", "mysqld", "local_infile") == "1"
    assert mycnf.get_option("[mysqld]\nloose-local-infile=0\n", "mysqld", "local_infile") == "0"
    # my_getopt: enable-x=0 disables, skip-x=0 enables
    assert mycnf.get_option("[mysqld]\nenable-local-infile=0\n", "mysqld", "local_infile") == "0"
    assert mycnf.get_option("[mysqld]\nskip-local-infile=0\n", "mysqld", "local_infile") == "1"
    bare = "[mysqld]\nlocal-infile\n"
    assert mycnf.get_option(bare, "mysqld", "local_infile") == ""
    assert mycnf.as_bool(mycnf.get_option(bare, "mysqld", "local_infile")) is True
    # an option whose own name starts with skip- is looked up as itself
    assert mycnf.get_option(TRICKY, "mysqld", "skip-name-resolve") == ""
    assert mycnf.get_option(TRICKY, "mysqld", "name-resolve") == "0"


def test_as_bool():
    assert [mycnf.as_bool(v) for v in ("1", "ON", "true", "", "0", "off", "FALSE")] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip
    assert mycnf.as_bool(None) is None
    with pytest.raises(ValueError):
        mycnf.as_bool("2")


def test_the_last_line_wins():
    text = "[mysqld]\nlocal_infile=0\n[client]\nport=1\n[mysqld]\nlocal-infile=1\n"
    assert mycnf.get_option(text, "mysqld", "local_infile") == "1"


def test_effective_value_across_groups_in_file_order():
    text = "[server]\nlocal_infile=1\n[mysqld]\nlocal_infile=0\n[mariadb]\nlocal-infile=1\n"
    groups = ("mysqld", "server", "mariadb")
    assert mycnf.get_effective(text, groups, "local_infile") == "1"
    assert mycnf.get_effective(text, ("mysqld", "server"), "local_infile") == "0"
    assert mycnf.get_effective(text, ("client",), "local_infile") is None


def test_includes_are_listed():
    assert mycnf.includes(DEBIAN_MAIN) == [
        ("includedir", "/etc/mysql/conf.d/"),
        ("includedir", "/etc/mysql/mariadb.conf.d/"),
    ]
    assert mycnf.includes("[mysqld]\n!include /etc/my extra.cnf  \nport=1\n") == [
        ("include", "/etc/my extra.cnf")
    ]
    assert mycnf.includes(LAB_LIKE) == []


def test_sections_in_order():
    assert mycnf.sections(DEBIAN_SERVER) == ["server", "mysqld", "embedded", "mariadb",
                                             "mariadb-10.11"]  # fmt: skip
    assert mycnf.sections(TRICKY) == ["mysqld"]


def _diff(before: str, after: str) -> list[tuple[str, str]]:
    import difflib

    return [
        (line[0], line[2:])
        for line in difflib.ndiff(before.splitlines(), after.splitlines())
        if line[0] in "+-"
    ]


def test_set_option_adds_one_line_after_the_groups_last_option():
    after = mycnf.set_option(LAB_LIKE, "mysqld", "local-infile", "0")
    assert _diff(LAB_LIKE, after) == [("+", "local-infile=0")]
    assert after.endswith("max_connections = 100\nlocal-infile=0\n")
    assert mycnf.get_option(after, "mysqld", "local_infile") == "0"


def test_set_option_on_a_real_debian_file_changes_only_its_line():
    after = mycnf.set_option(DEBIAN_SERVER, "mysqld", "local_infile", "0")
    assert _diff(DEBIAN_SERVER, after) == [("+", "local_infile=0")]
    assert mycnf.get_option(after, "mysqld", "local-infile") == "0"
    # it went into [mysqld], before [embedded]
    lines = after.splitlines()
    assert lines.index("local_infile=0") < lines.index("[embedded]")
    assert lines.index("local_infile=0") > lines.index("[mysqld]")


def test_set_option_rewrites_in_place_keeping_spacing_and_comment():
    text = "[mysqld]\n  local_infile = 1   # the app loads CSV\nport=3306\n"
    after = mycnf.set_option(text, "mysqld", "local-infile", "0")
    assert after == "[mysqld]\n  local_infile = 0   # the app loads CSV\nport=3306\n"


def test_set_option_replaces_a_prefixed_form():
    text = "[mysqld]\nenable-local-infile  # yes\n"
    after = mycnf.set_option(text, "mysqld", "local-infile", "0")
    assert after == "[mysqld]\nlocal-infile=0  # yes\n"


def test_set_option_rewrites_only_the_last_of_several():
    text = "[mysqld]\nlocal_infile=1\n[client]\nport=1\n[mysqld]\nlocal_infile=1\nport=2\n"
    after = mycnf.set_option(text, "mysqld", "local_infile", "0")
    assert after == "[mysqld]\nlocal_infile=1\n[client]\nport=1\n[mysqld]\nlocal_infile=0\nport=2\n"
    assert mycnf.get_option(after, "mysqld", "local_infile") == "0"


def test_set_option_adds_a_missing_group_at_the_end():
    text = "[client]\nport=1"  # no final newline
    after = mycnf.set_option(text, "mysqld", "local-infile", "0")
    assert after == "[client]\nport=1\n\n[mysqld]\nlocal-infile=0\n"
    assert mycnf.set_option("", "mysqld", "a", "b") == "[mysqld]\na=b\n"


def test_set_option_into_an_empty_group_and_crlf_files():
    assert mycnf.set_option("[mysqld]\n\n[client]\n", "mysqld", "x", "1") == (
        "[mysqld]\nx=1\n\n[client]\n"
    )
    crlf = "[mysqld]\r\nport=1\r\n"
    assert mycnf.set_option(crlf, "mysqld", "x", "1") == "[mysqld]\r\nport=1\r\nx=1\r\n"


def test_set_option_quotes_values_that_need_it_and_reads_them_back():
    for value in ("a # b", " lead", "C:\\dir", 'say "hi"', "it's", ""):
        after = mycnf.set_option(LAB_LIKE, "mysqld", "init_connect", value)
        assert mycnf.get_option(after, "mysqld", "init_connect") == value, value
    after = mycnf.set_option(LAB_LIKE, "mysqld", "plain", "/var/lib/mysql")
    assert "plain=/var/lib/mysql\n" in after
    with pytest.raises(ValueError):
        mycnf.set_option(LAB_LIKE, "mysqld", "x", "two\nlines")


@pytest.mark.skipif(not shutil.which("my_print_defaults"), reason="my_print_defaults not installed")
def test_written_values_read_back_by_my_print_defaults(tmp_path):
    text = LAB_LIKE
    values = {"init_connect": "SET x # y", "plugin_dir": "C:\\a b", "q": 'say "hi"'}
    for name, value in values.items():
        text = mycnf.set_option(text, "mysqld", name, value)
    sample = tmp_path / "my.cnf"
    sample.write_text(text)
    out = subprocess.run(
        ["my_print_defaults", f"--defaults-file={sample}", "mysqld"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    printed = dict(mycnf.parse_print_defaults(out))
    assert {name: printed[name] for name in values} == values


def test_set_option_bare_boolean():
    after = mycnf.set_option(LAB_LIKE, "mysqld", "skip-name-resolve", None)
    assert after.endswith("max_connections = 100\nskip-name-resolve\n")
    assert mycnf.get_option(after, "mysqld", "skip_name_resolve") == ""


def test_remove_option_removes_every_form_in_that_group_only():
    text = (
        "[mysqld]\nlocal_infile=1\nskip-local-infile\nport=1\n"
        "[client]\nlocal-infile=1\n[mysqld]\n# local_infile=1\nloose-local-infile\n"
    )
    after = mycnf.remove_option(text, "mysqld", "local-infile")
    assert after == "[mysqld]\nport=1\n[client]\nlocal-infile=1\n[mysqld]\n# local_infile=1\n"
    assert mycnf.remove_option(after, "mysqld", "local-infile") == after


def test_parse_print_defaults_and_effective_value():
    out = "--user=mysql\n--local-infile\n--port=3306\n--skip-local-infile\n"
    args = mycnf.parse_print_defaults(out)
    assert args[:2] == [("user", "mysql"), ("local-infile", None)]
    assert mycnf.effective_from_args(args, "local_infile") == "0"
    assert mycnf.effective_from_args(args[:2], "local_infile") == ""
    assert mycnf.effective_from_args(args, "bind_address") is None
