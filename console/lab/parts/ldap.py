"""slapd (OpenLDAP 2.5) with a throwaway slapd.conf, loaded offline with the seed people.

It listens on the bridge address, so that hosts reach it too (PostgreSQL's `ldap` method).
"""

import base64
import hashlib
import os

from console.lab import proc, seed
from console.lab.part import Part, new_password

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema

pidfile {run}/slapd.pid
argsfile {run}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload refint

database mdb
maxsize 67108864
suffix "{base}"
rootdn "{admin_dn}"
rootpw {admin_hash}
directory {data}
index objectClass eq
index uid,cn,mail eq,sub
index member eq

# Deleting a person removes them from every group too.
overlay refint
refint_attributes member
refint_nothing "{admin_dn}"

access to attrs=userPassword
    by self =xw
    by anonymous auth
    by * none
access to *
    by users read
    by anonymous auth
    by * none
"""


def ssha(password: str) -> str:
    """An {SSHA} userPassword value: salted SHA-1, as slappasswd makes it."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 (LDAP's own scheme)
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def ldif_line(attribute: str, value: str) -> str:
    """One LDIF line; a value that is not plain ASCII (or starts unsafely) is base64 (`::`)."""
    safe = value.isascii() and value.isprintable() and not value.startswith((" ", ":", "<"))
    if safe and not value.endswith(" "):
        return f"{attribute}: {value}\n"
    return f"{attribute}:: {base64.b64encode(value.encode()).decode()}\n"


def ldif_entry(dn: str, attributes: list[tuple[str, str]]) -> str:
    return ldif_line("dn", dn) + "".join(ldif_line(a, v) for a, v in attributes) + "\n"


def seed_ldif() -> str:
    """The whole directory: base, ou=people, ou=groups, the people and their groups."""
    entries = [
        ldif_entry(
            seed.LDAP_BASE,
            [("objectClass", "dcObject"), ("objectClass", "organization")]
            + [("dc", "example"), ("o", "Example")],
        ),
        ldif_entry(
            seed.LDAP_PEOPLE_BASE, [("objectClass", "organizationalUnit"), ("ou", "people")]
        ),
        ldif_entry(
            seed.LDAP_GROUPS_BASE, [("objectClass", "organizationalUnit"), ("ou", "groups")]
        ),
    ]
    for person in seed.LAB_PEOPLE:
        attributes = [("objectClass", "inetOrgPerson"), ("uid", person["uid"])]
        attributes += [("cn", person["cn"]), ("givenName", person["given_name"])]
        attributes += [("sn", person["sn"]), ("mail", person["mail"])]
        attributes += [("displayName", person["cn"]), ("userPassword", ssha(person["password"]))]
        entries.append(ldif_entry(seed.person_dn(person["uid"]), attributes))
    for group in seed.LAB_GROUPS:
        members = [seed.person_dn(p["uid"]) for p in seed.LAB_PEOPLE if group in p["groups"]]
        attributes = [("objectClass", "groupOfNames"), ("cn", group)]
        attributes += [("member", dn) for dn in members or [seed.LDAP_ADMIN_DN]]
        entries.append(ldif_entry(seed.group_dn(group), attributes))
    return "".join(entries)


class Slapd(Part):
    name = "ldap"
    comm = "slapd"
    description = "OpenLDAP"

    @property
    def pid_file(self):
        return self.dir / "run" / "slapd.pid"

    @property
    def conf(self):
        return self.dir / "slapd.conf"

    def new_record(self, old: dict, taken: set[int]) -> dict:
        rec = super().new_record(old, taken)
        rec["admin_password"] = old.get("admin_password") or new_password()
        return rec

    def build(self, rec: dict) -> None:
        proc.make_dir(self.dir)
        data = proc.make_dir(self.dir / "data", owner="openldap", mode=0o700)
        run = proc.make_dir(self.dir / "run", owner="openldap", mode=0o755)
        conf = SLAPD_CONF.format(
            run=run,
            base=seed.LDAP_BASE,
            admin_dn=seed.LDAP_ADMIN_DN,
            admin_hash=ssha(rec["admin_password"]),
            data=data,
        )
        proc.write_file(self.conf, conf, mode=0o640)
        proc.chown(self.conf, "root", "openldap")
        ldif = proc.write_file(self.dir / "seed.ldif", seed_ldif(), owner="openldap", mode=0o600)
        slapadd = ["slapadd", "-f", str(self.conf), "-l", str(ldif)]
        proc.run(self.host.argv(slapadd, user="openldap"), timeout=60)
        ldif.unlink()
        self.start(rec)

    def start(self, rec: dict) -> None:
        url = f"ldap://{rec['host']}:{rec['port']}/"
        argv = ["slapd", "-f", str(self.conf), "-h", url, "-u", "openldap", "-g", "openldap"]
        proc.run(self.host.argv(argv), timeout=30, new_session=True)
        proc.wait_for(
            lambda: self.running() and proc.port_open(rec["host"], rec["port"]),
            20,
            "slapd to accept connections",
        )

    def env(self, rec: dict) -> dict[str, str]:
        uri = f"ldap://{rec['host']}:{rec['port']}"
        return {
            "LAB_LDAP_URI": uri,
            "LAB_LDAP_BASE": seed.LDAP_BASE,
            "LAB_LDAP_ADMIN_DN": seed.LDAP_ADMIN_DN,
            "LAB_LDAP_ADMIN_PASSWORD": rec["admin_password"],
            "LDAP_SERVER_URI": uri,
            "LDAP_USER_BASE_DN": seed.LDAP_PEOPLE_BASE,
            "LDAP_GROUP_BASE_DN": seed.LDAP_GROUPS_BASE,
            "LDAP_BIND_DN": seed.LDAP_ADMIN_DN,
            "LDAP_BIND_PASSWORD": rec["admin_password"],
        }
