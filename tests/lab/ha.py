"""What the HA tests share: the lab's primary (db1), standby (db2) and pgpool (lb1), from the
variables of `lab env`, and the rebuild of those parts after a test broke them."""

import os
import time
from dataclasses import dataclass

import pytest

from console.lab.lab import Lab
from console.lab.parts import pgpool

HA_VARIABLES = (
    "LAB_PG_STANDBY_HOST",
    "LAB_PG_STANDBY_PORT",
    "LAB_PGPOOL_HOST",
    "LAB_PGPOOL_PORT",
    "LAB_PGPOOL_PCP_PORT",
)


@dataclass(frozen=True, repr=False)
class Ha:
    """How to reach the HA parts as postgres: targets for console.lab.parts.pgha.query."""

    lab: Lab
    primary: dict
    standby: dict
    pool: dict

    def __repr__(self) -> str:  # without the passwords, which a failing test would print
        where = (f"{t['host']}:{t['port']}" for t in (self.primary, self.standby, self.pool))
        return "Ha(primary={}, standby={}, pool={})".format(*where)

    def as_user(self, target: dict, user: str, password: str, dbname: str) -> dict:
        return {**target, "user": user, "password": password, "dbname": dbname}

    def rebuild(self) -> None:
        """Give back the normal topology (db1 primary, db2 sync standby, pgpool on both, every
        host's sshd): `lab up` of those parts rebuilds the broken ones (a crashed host's) and
        those built on a rebuilt one (pgha.built_on_current)."""
        started = time.monotonic()
        hosts = ("db1", "db2", "lb1")
        parts = [part.name for host in hosts for part in self.lab.parts_on(host)]
        self.lab.up(parts, report=lambda line: print(f"  {line}"))
        pgpool.wait_for_pool_nodes(self.pool, pgpool.NORMAL_NODES, timeout=20)
        print(f"HA parts rebuilt in {time.monotonic() - started:.1f} s")


def ha_from_env(lab_env, lab: Lab) -> Ha:
    """The HA parts of the running lab (the `lab` fixture checked its bridge); fails, never
    skips, when `lab env` lacks them."""
    missing = [name for name in HA_VARIABLES if not os.environ.get(name)]
    if missing:
        pytest.fail(f"lab environment lacks {', '.join(missing)}: is the lab up?", pytrace=False)
    login = {"user": lab_env["LAB_PG_USER"], "password": lab_env["LAB_PG_PASSWORD"]}
    return Ha(
        lab=lab,
        primary={"host": lab_env["LAB_PG_HOST"], "port": int(lab_env["LAB_PG_PORT"]), **login},
        standby={
            "host": os.environ["LAB_PG_STANDBY_HOST"],
            "port": int(os.environ["LAB_PG_STANDBY_PORT"]),
            **login,
        },
        pool={
            "host": os.environ["LAB_PGPOOL_HOST"],
            "port": int(os.environ["LAB_PGPOOL_PORT"]),
            **login,
        },
    )
