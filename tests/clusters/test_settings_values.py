"""clusters.serversettings: checking a proposed value before anything is sent (pure).

The rows are pg_settings and information_schema.SYSTEM_VARIABLES rows as the lab's PostgreSQL
15 and MariaDB 10.11 return them (recorded with the console's own queries).
"""

import pytest

from clusters.serversettings import (
    SettingRefused,
    check_mariadb_value,
    check_pg_value,
    lost_access,
    parse_address_list,
    pg_literals_of_file_value,
    pg_shown,
    split_pg_list,
)

WORK_MEM = {"name": "work_mem", "vartype": "integer", "unit": "kB", "min_val": "64",
            "max_val": "2147483647", "context": "user", "enumvals": []}  # fmt: skip
SHARED_BUFFERS = {"name": "shared_buffers", "vartype": "integer", "unit": "8kB", "min_val": "16",
                  "max_val": "1073741823", "context": "postmaster", "enumvals": []}  # fmt: skip
STATEMENT_TIMEOUT = {"name": "statement_timeout", "vartype": "integer", "unit": "ms",
                     "min_val": "0", "max_val": "2147483647", "context": "user"}  # fmt: skip
RANDOM_PAGE_COST = {"name": "random_page_cost", "vartype": "real", "unit": "", "min_val": "0",
                    "max_val": "1.79769e+308", "context": "user"}  # fmt: skip
WAL_LEVEL = {"name": "wal_level", "vartype": "enum", "unit": "", "context": "postmaster",
             "enumvals": ["minimal", "replica", "logical"]}  # fmt: skip
HOT_STANDBY = {"name": "hot_standby", "vartype": "bool", "context": "postmaster"}
LISTEN = {"name": "listen_addresses", "vartype": "string", "context": "postmaster"}
PRELOAD = {"name": "shared_preload_libraries", "vartype": "string", "context": "postmaster"}
BLOCK_SIZE = {"name": "block_size", "vartype": "integer", "context": "internal"}

MY_MAX_CONNECTIONS = {"name": "max_connections", "type": "BIGINT UNSIGNED", "min": "10",
                      "max": "100000", "block_size": "1", "read_only": False,
                      "option": True}  # fmt: skip
MY_BUFFER_POOL = {"name": "innodb_buffer_pool_size", "type": "BIGINT UNSIGNED", "min": "2097152",
                  "max": "18446744073701163008", "block_size": "1048576", "read_only": False,
                  "option": True}  # fmt: skip
MY_LOCAL_INFILE = {"name": "local_infile", "type": "BOOLEAN", "enum_values": "OFF,ON",
                   "read_only": False, "option": True}  # fmt: skip
MY_BINLOG_FORMAT = {"name": "binlog_format", "type": "ENUM", "enum_values": "MIXED,STATEMENT,ROW",
                    "read_only": False, "option": True}  # fmt: skip
MY_LONG_QUERY_TIME = {"name": "long_query_time", "type": "DOUBLE", "min": "0", "max": "31536000",
                      "read_only": False, "option": True}  # fmt: skip
MY_SQL_MODE = {"name": "sql_mode", "type": "SET", "read_only": False, "option": True,
               "enum_values": "ANSI_QUOTES,STRICT_TRANS_TABLES,NO_ZERO_DATE"}  # fmt: skip
MY_BIND = {"name": "bind_address", "type": "VARCHAR", "read_only": True, "option": True}
MY_VERSION = {"name": "version", "type": "VARCHAR", "read_only": True, "option": False}


def refused(row, value, check=check_pg_value) -> str:
    with pytest.raises(SettingRefused) as caught:
        check(row, value)
    return str(caught.value)


# --- PostgreSQL -------------------------------------------------------------------------------


def test_an_integer_with_a_memory_unit_is_checked_in_the_parameters_own_unit():
    assert check_pg_value(WORK_MEM, "64MB").literals == ("64MB",)
    assert check_pg_value(WORK_MEM, "4096").literals == ("4096",)
    assert check_pg_value(SHARED_BUFFERS, "128MB").text == "128MB"  # 16384 pages of 8 kB
    assert "below the minimum 64 kB" in refused(WORK_MEM, "32kB")
    assert "below the minimum 16 8kB" in refused(SHARED_BUFFERS, "64kB")
    assert "above the maximum" in refused(WORK_MEM, "4TB")


def test_units_are_case_sensitive_and_must_suit_the_parameter():
    assert "unknown unit 'mb'" in refused(WORK_MEM, "64mb")
    assert "unknown unit 'min'" in refused(WORK_MEM, "5min")
    assert check_pg_value(STATEMENT_TIMEOUT, "5min").text == "5min"
    assert "takes no unit" in refused(RANDOM_PAGE_COST, "2ms")
    assert "takes a number" in refused(WORK_MEM, "lots")


def test_a_real_bool_and_enum_are_normalised():
    assert check_pg_value(RANDOM_PAGE_COST, "1.1").text == "1.1"
    assert "below the minimum" in refused(RANDOM_PAGE_COST, "-1")
    assert check_pg_value(HOT_STANDBY, "TRUE").literals == ("on",)
    assert check_pg_value(HOT_STANDBY, "no").literals == ("off",)
    assert "on or off" in refused(HOT_STANDBY, "maybe")
    assert check_pg_value(WAL_LEVEL, "Logical").literals == ("logical",)
    assert "one of minimal, replica, logical" in refused(WAL_LEVEL, "archive")


def test_read_only_and_start_time_parameters_are_refused():
    assert "read-only" in refused(BLOCK_SIZE, "16384")
    assert "cannot be changed here" in refused({**LISTEN, "name": "data_directory"}, "/tmp")


def test_control_characters_and_credentials_are_refused():
    assert "line breaks" in refused(LISTEN, "localhost\nport = 1")
    conninfo = {"name": "primary_conninfo", "vartype": "string", "context": "sighup"}
    assert "credential" in refused(conninfo, "host=db1 password=s3cret")


def test_listen_addresses_take_star_localhost_addresses_and_host_names():
    assert check_pg_value(LISTEN, "10.77.0.11,localhost").text == "10.77.0.11, localhost"
    assert check_pg_value(LISTEN, "*").literals == ("*",)
    assert check_pg_value(LISTEN, "::1, db1.example.org").text == "::1, db1.example.org"
    assert check_pg_value(LISTEN, "").literals == ("",)  # Unix sockets only
    assert "neither '*', an IP address nor a host name" in refused(LISTEN, "10.77.0.300")
    assert "neither" in refused(LISTEN, "db1;rm -rf")
    assert "empty entry" in refused(LISTEN, "localhost,,db1")


def test_quoted_list_parameters_are_sent_one_literal_per_element():
    assert check_pg_value(PRELOAD, "pg_stat_statements, auto_explain").literals == (
        "pg_stat_statements",
        "auto_explain",
    )
    search_path = {**PRELOAD, "name": "search_path"}
    checked = check_pg_value(search_path, '"$user", public, "My Schema"')
    assert checked.literals == ("$user", "public", "My Schema")
    assert checked.text == '"$user", public, "My Schema"'
    assert "Reset to default" in refused(PRELOAD, "")


def test_a_file_value_of_a_quoted_list_is_split_back_into_its_elements():
    assert pg_literals_of_file_value("shared_preload_libraries", '"a, b"') == ("a, b",)
    assert pg_literals_of_file_value("search_path", '"$user", public') == ("$user", "public")
    assert pg_literals_of_file_value("work_mem", "1GB") == ("1GB",)
    assert split_pg_list('"say ""hi""", x') == ['say "hi"', "x"]
    with pytest.raises(SettingRefused):
        split_pg_list('"open, x')


def test_the_console_loses_access_when_its_address_is_no_longer_listened_on():
    assert lost_access(["localhost"], "10.77.0.11")
    assert lost_access([], "10.77.0.11")
    assert not lost_access(["localhost", "10.77.0.11"], "10.77.0.11")
    assert not lost_access(["*"], "10.77.0.11")
    assert not lost_access(["0.0.0.0"], "10.77.0.11")  # noqa: S104
    assert lost_access(["0.0.0.0"], "fd00::11")  # noqa: S104
    assert not lost_access(["DB1.example.org"], "db1.example.org")
    assert parse_address_list(" a , b ", "x") == ["a", "b"]


# --- MariaDB ----------------------------------------------------------------------------------


def test_mariadb_integers_take_suffixes_ranges_and_block_sizes():
    assert check_mariadb_value(MY_MAX_CONNECTIONS, "120").sql == 120
    assert check_mariadb_value(MY_BUFFER_POOL, "128M").config == str(128 * 1024**2)
    assert "below the minimum 10" in refused(MY_MAX_CONNECTIONS, "5", check_mariadb_value)
    assert "multiple of 1048576" in refused(MY_BUFFER_POOL, "3000000", check_mariadb_value)
    assert "whole number" in refused(MY_MAX_CONNECTIONS, "12.5", check_mariadb_value)


def test_mariadb_booleans_enums_sets_and_doubles_are_normalised():
    assert check_mariadb_value(MY_LOCAL_INFILE, "0").config == "OFF"
    assert check_mariadb_value(MY_BINLOG_FORMAT, "row").config == "ROW"
    assert "one of MIXED, STATEMENT, ROW" in refused(MY_BINLOG_FORMAT, "x", check_mariadb_value)
    assert check_mariadb_value(MY_SQL_MODE, "ansi_quotes,NO_ZERO_DATE").config == (
        "ANSI_QUOTES,NO_ZERO_DATE"
    )
    assert "unknown NOPE" in refused(MY_SQL_MODE, "NOPE", check_mariadb_value)
    assert check_mariadb_value(MY_LONG_QUERY_TIME, "0.5").sql == 0.5
    assert "above the maximum" in refused(MY_LONG_QUERY_TIME, "1e9", check_mariadb_value)


def test_mariadb_bind_address_and_informational_variables():
    assert check_mariadb_value(MY_BIND, "10.77.0.14, 127.0.0.1").config == "10.77.0.14,127.0.0.1"
    assert "cannot be empty" in refused(MY_BIND, " ", check_mariadb_value)
    assert "read-only" in refused(MY_VERSION, "11.0", check_mariadb_value)


def test_raw_numbers_are_shown_as_show_prints_them():
    assert pg_shown("4096", "kB") == "4MB"
    assert pg_shown("16384", "8kB") == "128MB"
    assert pg_shown("60", "s") == "1min"
    assert pg_shown("1500", "ms") == "1500ms"
    assert pg_shown("-1", "kB") == "-1" and pg_shown("0", "ms") == "0"
    assert pg_shown("on", "") == "on"


# --- check_change: the row's own refusals (no server asked) -----------------------------------


def _node(service: str, **fields):
    from clusters.models import Node

    return Node(name="n1", service=service, address="10.77.0.11", db_port=None, **fields)


def test_check_change_refuses_what_the_row_says_cannot_work():
    from clusters.actions.settings_check import AccessWouldBeLost, ChangeRefused, check_change

    pg = _node("postgresql")
    with pytest.raises(ChangeRefused, match="from its command line"):
        check_change(pg, {**WORK_MEM, "source": "command line"}, "work_mem", "8MB")
    with pytest.raises(ChangeRefused, match="configuration files hold errors"):
        check_change(pg, {**WORK_MEM, "config_errors": "x (f): bad"}, "work_mem", "8MB")
    with pytest.raises(ChangeRefused, match="no parameter named"):
        check_change(pg, None, "nope", "1")
    port = {"name": "port", "vartype": "integer", "min_val": "1", "max_val": "65535"}
    assert check_change(pg, port, "port", "5432").text == "5432"  # the default the console uses
    with pytest.raises(AccessWouldBeLost):
        check_change(pg, port, "port", "5433")
    assert check_change(pg, port, "port", "5433", confirmed=True).text == "5433"
    my = _node("mariadb")
    with pytest.raises(ChangeRefused, match="from its command line"):
        check_change(my, {**MY_MAX_CONNECTIONS, "origin": "COMMAND-LINE"}, "max_connections", "9")
    assert check_change(my, MY_MAX_CONNECTIONS, "max_connections", None) is None  # a reset
    with pytest.raises(ChangeRefused, match="cannot be reset here"):
        check_change(pg, BLOCK_SIZE, "block_size", None)
    with pytest.raises(ChangeRefused, match="read-only"):
        check_change(my, MY_VERSION, "version", None)
