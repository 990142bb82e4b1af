"""pgpool-II's files as clusters.ha.config renders them (pure), and pcp_node_info parsing from
real output of pgpool-II 4.3.5 (recorded from the lab after a failover); the values the HA
code computes for a server (synchronous_standby_names, where pg_ctl writes its log)."""

from types import SimpleNamespace

from clusters.ha import config, remote
from clusters.provision.standby import parse_sync_names

RECORDED_NODE_INFO = """\
10.77.87.11 5432 3 0.500000 down down standby unknown 0 streaming async 2026-11-26 02:31:24
10.77.87.12 5432 2 0.500000 up up primary primary 0 none none 2026-11-26 02:31:24
"""


def _setup(**kw):
    backends = [
        {"node": 1, "name": "db1", "address": "10.0.0.11", "port": 5432, "weight": 1,
         "data_directory": "/srv/pg/data", "application_name": "db1"},
        {"node": 2, "name": "db2", "address": "10.0.0.12", "port": 5433, "weight": 3,
         "data_directory": "/srv/pg 2/data", "application_name": "db2_app"},
    ]  # fmt: skip
    values = {"directory": "/var/lib/pool/", "pcp_port": 9898, "backends": backends,
              "delay_threshold": 1024, "health_check_period": 1, "health_check_timeout": 2,
              "health_check_max_retries": 1, "pg_bin": "/usr/lib/postgresql/15/bin",
              "cluster": SimpleNamespace(name="c1")}  # fmt: skip
    return SimpleNamespace(**{**values, **kw})


def test_conf_has_each_backend_and_what_failover_needs():
    conf = config.render_conf(_setup(), "10.0.0.13", 9999)
    settings = dict(line.split(" = ", 1) for line in conf.splitlines() if " = " in line)
    assert settings["backend_clustering_mode"] == "'streaming_replication'"
    assert settings["backend_hostname1"] == "'10.0.0.12'" and settings["backend_port1"] == "5433"
    assert settings["backend_weight1"] == "3"
    assert settings["backend_application_name1"] == "'db2_app'"
    assert settings["backend_data_directory1"] == "'/srv/pg 2/data'"
    assert settings["allow_sql_comments"] == "on" and settings["auto_failback"] == "off"
    assert settings["failover_command"] == "'/var/lib/pool/failover.sh %d %h %p %D %m %H %P %r %R'"
    assert "%M" not in settings["failover_command"]  # the old main id, not a directory
    assert settings["pid_file_name"] == "'/var/lib/pool/pgpool.pid'"
    assert settings["connect_timeout"] == "2000"


def test_failover_script_checks_every_other_backend_before_promoting():
    script = config.render_failover(_setup())
    assert "for backend in 10.0.0.11:5432 10.0.0.12:5433; do" in script
    assert "PGPASSFILE=/var/lib/pool/pgpass" in script
    assert script.index("is a primary already") < script.index("pg_promote(true, 30)")


def test_hba_and_strings():
    assert config.render_hba(["10.0.0.0/24"]).splitlines()[-1].split() == [
        "host", "all", "all", "10.0.0.0/24", "scram-sha-256"]  # fmt: skip
    assert config.conf_string("it's \\ here") == "'it''s \\\\ here'"
    assert config.slot_name("Prov-A.bare2") == "prov_a_bare2"


def test_pcp_node_info_parsed_with_pool_nodes_names():
    nodes = config.parse_pcp_node_info(RECORDED_NODE_INFO)
    assert (nodes[0]["status"], nodes[0]["role"]) == ("down", "standby")
    assert (nodes[1]["status"], nodes[1]["role"], nodes[1]["port"]) == ("up", "primary", "5432")
    assert nodes[0]["replication_sync_state"] == "async"


def test_synchronous_standby_names_quote_each_application_name():
    value = remote.sync_names_value(["sales-db2"])
    assert value == 'FIRST 1 ("sales-db2")'  # unquoted, "-" is a syntax error for PostgreSQL
    assert parse_sync_names(value) == ("FIRST", 1, ["sales-db2"])
    assert remote.sync_names_value(['we"ird', "db_3"]) == 'FIRST 1 ("we""ird", "db_3")'


def test_a_server_started_by_the_ha_code_logs_to_its_node_log_file():
    provisioned = SimpleNamespace(log_path="/srv/pg/bare1/postgresql.log")
    assert remote.pg_log_path(provisioned, "/srv/pg/bare1/data/") == provisioned.log_path
    for unknown in ("", "log/postgresql-%a.log", "/srv/pg/data/log/postgresql-%Y-%m-%d.log"):
        node = SimpleNamespace(log_path=unknown)  # none, or a logging collector's pattern
        assert remote.pg_log_path(node, "/srv/pg/bare1/data/") == "/srv/pg/bare1/postgres.log"
