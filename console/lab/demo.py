"""`manage.py lab up --demo`: register the lab's clusters and servers in the console.

So that a newcomer who ran `make run` clicks through real servers. Idempotent: running it again
changes nothing; every registration and stored secret is audited (source cli). Needs Django and
a migrated console database, so it lives beside the lab, not in it.
"""

from collections.abc import Mapping
from pathlib import Path

from console.lab.net import require_lab_network

ENVIRONMENT = "lab"
SSH_KEY = "lab-ssh-key"
PG_PASSWORD = "lab-pg-postgres"
MYSQL_PASSWORD = "lab-mariadb-admin"
PCP_PASSWORD = "lab-pgpool-pcp"


def known_hosts_of(known_hosts: str, address: str) -> str:
    """The lines of a known_hosts text whose host patterns name `address`."""
    wanted = {address, f"[{address}]"}
    lines = []
    for line in known_hosts.splitlines():
        patterns = line.split(maxsplit=1)[0].split(",") if line.strip() else []
        if any(p in wanted or p.startswith(f"[{address}]:") for p in patterns):
            lines.append(line)
    return "\n".join(lines)


def register_demo(env: Mapping[str, str]) -> list[str]:
    """Register lab-pg (db1 primary, db2 standby, lb1 pgpool-II), lab-mariadb (my1) and the
    bare hosts from the lab's `env()` variables; return what was registered."""
    from clusters.actions import NodeSpec, register_cluster, register_host
    from clusters.models import Cluster, Node
    from console.models import AuditEntry
    from console.secrets import store_credential

    require_lab_network()
    cli = AuditEntry.Source.CLI
    store_credential(SSH_KEY, "ssh-key", Path(env["LAB_SSH_KEY"]).read_text(), actor=None,
                     username=env["LAB_SSH_USER"], source=cli)  # fmt: skip
    store_credential(PG_PASSWORD, "password", env["LAB_PG_PASSWORD"], actor=None,
                     username=env["LAB_PG_USER"], source=cli)  # fmt: skip
    store_credential(MYSQL_PASSWORD, "password", env["LAB_MYSQL_PASSWORD"], actor=None,
                     username=env["LAB_MYSQL_USER"], source=cli)  # fmt: skip
    store_credential(PCP_PASSWORD, "pcp-password", env["LAB_PGPOOL_PCP_PASSWORD"], actor=None,
                     username=env["LAB_PGPOOL_PCP_USER"], source=cli)  # fmt: skip

    def node(name: str, service: str, role: str, **db) -> NodeSpec:
        up = name.upper()
        address = env[f"LAB_{up}_SSH_HOST"]
        known = Path(env[f"LAB_{up}_SSH_KNOWN_HOSTS"]).read_text()
        return NodeSpec(
            name=name, service=service, role=role, address=address,
            ssh_port=int(env[f"LAB_{up}_SSH_PORT"]), ssh_user=env["LAB_SSH_USER"],
            ssh_credential=SSH_KEY, known_hosts=known_hosts_of(known, address), **db,
        )  # fmt: skip

    pg = {"db_credential": PG_PASSWORD}
    register_cluster(
        "lab-pg", Cluster.Kind.POSTGRESQL, environment=ENVIRONMENT, actor=None, source=cli,
        description="Lab: synchronous hot standby on db2, pgpool-II on lb1",
        nodes=[
            node("db1", Node.Service.POSTGRESQL, Node.Role.PRIMARY,
                 db_port=int(env["LAB_PG_PORT"]), **pg),
            node("db2", Node.Service.POSTGRESQL, Node.Role.STANDBY,
                 db_port=int(env["LAB_PG_STANDBY_PORT"]), **pg),
            node("lb1", Node.Service.PGPOOL, Node.Role.BALANCER,
                 db_port=int(env["LAB_PGPOOL_PORT"]), **pg),
        ],
    )  # fmt: skip
    register_cluster(
        "lab-mariadb", Cluster.Kind.MARIADB, environment=ENVIRONMENT, actor=None, source=cli,
        description="Lab: MariaDB as freshly installed (not hardened)",
        nodes=[node("my1", Node.Service.MARIADB, Node.Role.PRIMARY,
                    db_port=int(env["LAB_MYSQL_PORT"]), db_credential=MYSQL_PASSWORD)],
    )  # fmt: skip
    for bare in ("bare1", "bare2"):
        register_host(node(bare, Node.Service.NONE, Node.Role.NONE), actor=None, source=cli)
    return ["lab-pg (db1, db2, lb1)", "lab-mariadb (my1)", "bare1", "bare2"]
