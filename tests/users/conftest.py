"""Fixtures of the users tests: the lab's slapd as its admin sees it, with helpers that change
entries and put them back exactly, the lab's clusters registered as in `lab up --demo`, and the
cleanup of what a test created on the lab's servers (tests/users/labdb.py)."""

import os
from collections.abc import Iterator

import ldap
import ldap.modlist
import pytest

from console.lab import seed
from console.lab.proc import wait_for
from tests.users.labdb import Cleanup


class Directory:
    """The lab directory through its admin (rootdn): remove and disable people, and put every
    changed entry back as it was when the test ends."""

    def __init__(self, uri: str, admin_dn: str, password: str):
        self._login = (uri, admin_dn, password)
        self.connect()
        self._removed: list[tuple[str, dict, list[str]]] = []
        self._disabled: list[str] = []

    def connect(self) -> None:
        """A new admin connection (a restarted slapd dropped the old one)."""
        uri, admin_dn, password = self._login
        self.conn = ldap.initialize(uri)
        self.conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        self.conn.simple_bind_s(admin_dn, password)

    def entry(self, dn: str) -> dict:
        return self.conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["*"])[0][1]

    def groups_of(self, dn: str) -> list[str]:
        found = self.conn.search_s(
            seed.LDAP_GROUPS_BASE, ldap.SCOPE_ONELEVEL, f"(member={dn})", ["1.1"]
        )
        return [group_dn for group_dn, _ in found]

    def remove(self, uid: str) -> None:
        dn = seed.person_dn(uid)
        self._removed.append((dn, self.entry(dn), self.groups_of(dn)))
        self.conn.delete_s(dn)
        # slapd's refint overlay takes them out of their groups in a background task after the
        # delete has answered: wait for it, so that neither a stopped slapd (it would be left
        # undone) nor the restore (it would undo the re-added membership) races it.
        wait_for(lambda: not self.groups_of(dn), 10, f"refint to remove {dn} from its groups")

    def disable(self, uid: str) -> None:
        """What PEOPLE_LDAP_DISABLED_FILTER (shadowExpire=1) looks for."""
        dn = seed.person_dn(uid)
        changes = [(ldap.MOD_ADD, "objectClass", [b"shadowAccount"]),
                   (ldap.MOD_ADD, "shadowExpire", [b"1"])]  # fmt: skip
        self.conn.modify_s(dn, changes)
        self._disabled.append(dn)

    def restore(self) -> None:
        for dn in reversed(self._disabled):
            changes = [(ldap.MOD_DELETE, "shadowExpire", None),
                       (ldap.MOD_DELETE, "objectClass", [b"shadowAccount"])]  # fmt: skip
            self.conn.modify_s(dn, changes)
        self._disabled.clear()
        for dn, attrs, groups in reversed(self._removed):
            self.conn.add_s(dn, ldap.modlist.addModlist(attrs))
            for group in groups:
                self.conn.modify_s(group, [(ldap.MOD_ADD, "member", [dn.encode()])])
        self._removed.clear()

    def uids(self) -> set[str]:
        found = self.conn.search_s(seed.LDAP_PEOPLE_BASE, ldap.SCOPE_ONELEVEL, "(uid=*)", ["uid"])
        return {attrs["uid"][0].decode() for _, attrs in found}


@pytest.fixture
def directory(lab, lab_env) -> Iterator[Directory]:
    d = Directory(lab_env["LAB_LDAP_URI"], lab_env["LAB_LDAP_ADMIN_DN"],
                  lab_env["LAB_LDAP_ADMIN_PASSWORD"])  # fmt: skip
    before = d.uids()
    try:
        yield d
    finally:
        d.connect()
        d.restore()
        assert d.uids() == before, "the directory was not put back as it was"
        d.conn.unbind_s()


@pytest.fixture
def demo(lab_env):
    """The lab's clusters registered as in `lab up --demo` (lab-pg: db1, db2, lb1;
    lab-mariadb: my1)."""
    from clusters.models import Cluster
    from console.lab.demo import register_demo

    register_demo({**os.environ, **lab_env})
    return {c.name: c for c in Cluster.objects.all()}


@pytest.fixture
def cleanup(lab_env) -> Iterator[Cleanup]:
    """Drops, at the end, the roles, users and databases the test named (labdb.Cleanup)."""
    c = Cleanup(lab_env)
    yield c
    c.run()
