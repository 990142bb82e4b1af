"""Reading the people of the directory (python-ldap), for the directory sync.

The directory is the console's own infrastructure, like its sign-in (console/auth.py), not a
managed host: it is read here, not through the executor. Read-only: one simple bind with the
console's LDAP account, paged searches, then unbind. Which entries are people, their attribute
names, where groups are and what marks a disabled entry are settings (PEOPLE_LDAP_*, see
docs/people.md). Any failure, including a partial answer (size or time limit), raises
DirectoryUnavailable: the sync must never act on half a directory.
"""

from dataclasses import asdict, dataclass, field

import ldap
import ldap.dn
from django.conf import settings
from ldap.controls import SimplePagedResultsControl

PAGE_SIZE = 500


class DirectoryUnavailable(Exception):
    """The directory could not be read completely; the message is safe to show."""


@dataclass(frozen=True)
class DirectoryEntry:
    """A person as the directory describes them."""

    uid: str
    name: str
    mail: str
    dn: str
    groups: tuple[str, ...] = ()
    disabled: bool = False

    def as_dict(self) -> dict:
        return {**asdict(self), "groups": list(self.groups)}

    @classmethod
    def from_dict(cls, data: dict) -> "DirectoryEntry":
        return cls(**{**data, "groups": tuple(data.get("groups", ()))})


@dataclass(frozen=True)
class DirectoryConfig:
    """Where and how people are read; `from_settings()` builds it from PEOPLE_LDAP_*."""

    uri: str
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    start_tls: bool = False
    timeout: int = 5
    base_dn: str = ""
    filter: str = "(objectClass=inetOrgPerson)"
    attr_uid: str = "uid"
    attr_name: tuple[str, ...] = ("displayName", "cn")
    attr_mail: str = "mail"
    attr_member_of: str = ""  # when set, groups come from this attribute of the person
    group_base_dn: str = ""
    group_filter: str = "(objectClass=groupOfNames)"
    group_member_attr: str = "member"  # DNs; memberUid holds uids
    group_name_attr: str = "cn"
    disabled_filter: str = ""  # an LDAP filter matching disabled people; empty: none

    @classmethod
    def from_settings(cls) -> "DirectoryConfig":
        return cls(
            uri=settings.PEOPLE_LDAP_URI,
            bind_dn=settings.PEOPLE_LDAP_BIND_DN,
            bind_password=settings.PEOPLE_LDAP_BIND_PASSWORD,
            start_tls=settings.PEOPLE_LDAP_START_TLS,
            timeout=settings.PEOPLE_LDAP_TIMEOUT,
            base_dn=settings.PEOPLE_LDAP_BASE_DN,
            filter=settings.PEOPLE_LDAP_FILTER,
            attr_uid=settings.PEOPLE_LDAP_ATTR_UID,
            attr_name=tuple(settings.PEOPLE_LDAP_ATTR_NAME),
            attr_mail=settings.PEOPLE_LDAP_ATTR_MAIL,
            attr_member_of=settings.PEOPLE_LDAP_ATTR_MEMBER_OF,
            group_base_dn=settings.PEOPLE_LDAP_GROUP_BASE_DN,
            group_filter=settings.PEOPLE_LDAP_GROUP_FILTER,
            group_member_attr=settings.PEOPLE_LDAP_GROUP_MEMBER_ATTR,
            group_name_attr=settings.PEOPLE_LDAP_GROUP_NAME_ATTR,
            disabled_filter=settings.PEOPLE_LDAP_DISABLED_FILTER,
        )


def normalize_dn(dn: str) -> str:
    """One spelling of a DN (no spaces after commas, lower case), so DNs compare reliably."""
    try:
        return ldap.dn.dn2str(ldap.dn.str2dn(dn)).lower()
    except ldap.DECODING_ERROR:
        return dn.strip().lower()


def first_rdn_value(dn: str) -> str:
    """`team-web` for `cn=team-web,ou=groups,...`: how a memberOf DN names its group."""
    try:
        return ldap.dn.str2dn(dn)[0][0][1]
    except (ldap.DECODING_ERROR, IndexError):
        return dn


def _text(values: list[bytes] | None) -> str:
    return values[0].decode("utf-8", "replace").strip() if values else ""


def _texts(values: list[bytes] | None) -> list[str]:
    return [v.decode("utf-8", "replace").strip() for v in values or ()]


def _attr(attrs: dict, name: str) -> list[bytes] | None:
    """An attribute's values; LDAP attribute names are case-insensitive."""
    if name in attrs:
        return attrs[name]
    lowered = name.lower()
    for key, values in attrs.items():
        if key.lower() == lowered:
            return values
    return None


def _connect(config: DirectoryConfig):
    conn = ldap.initialize(config.uri)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, config.timeout)
    conn.set_option(ldap.OPT_TIMEOUT, config.timeout)
    conn.protocol_version = ldap.VERSION3
    if config.start_tls:
        conn.start_tls_s()
    conn.simple_bind_s(config.bind_dn, config.bind_password)
    return conn


def _paged_search(conn, base: str, filterstr: str, attrs: list[str]) -> list[tuple[str, dict]]:
    """Every entry under `base` matching `filterstr`, page by page (Simple Paged Results), so a
    server's size limit per answer does not cut the list short. Referrals are skipped."""
    control = SimplePagedResultsControl(True, size=PAGE_SIZE, cookie="")
    found: list[tuple[str, dict]] = []
    while True:
        msgid = conn.search_ext(base, ldap.SCOPE_SUBTREE, filterstr, attrs, serverctrls=[control])
        _type, data, _msgid, controls = conn.result3(msgid)
        found.extend((dn, attrs) for dn, attrs in data if dn is not None)
        cookie = next(
            (c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType),
            b"",
        )
        if not cookie:
            return found
        control.cookie = cookie


def _describe(error: ldap.LDAPError) -> str:
    info = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    text = info.get("desc") or type(error).__name__
    if info.get("info"):
        text += f" ({info['info']})"
    return text


def read_directory(config: DirectoryConfig | None = None) -> list[DirectoryEntry]:
    """Every person under the base DN, with their groups and whether they are disabled.

    Raises DirectoryUnavailable when the directory is not configured, cannot be reached, refuses
    the bind or answers only in part. Entries without the uid attribute are not people.
    """
    config = config or DirectoryConfig.from_settings()
    if not config.uri or not config.base_dn:
        raise DirectoryUnavailable(
            "no directory configured (LDAP_SERVER_URI and PEOPLE_LDAP_BASE_DN)"
        )
    try:
        conn = _connect(config)
    except ldap.LDAPError as e:
        raise DirectoryUnavailable(
            f"cannot reach the directory {config.uri}: {_describe(e)}"
        ) from None
    try:
        return _read(conn, config)
    except ldap.LDAPError as e:
        raise DirectoryUnavailable(
            f"reading the directory {config.uri} failed: {_describe(e)}"
        ) from None
    finally:
        try:
            conn.unbind_s()
        except ldap.LDAPError:
            pass


def _read(conn, config: DirectoryConfig) -> list[DirectoryEntry]:
    attrs = [config.attr_uid, *config.attr_name, config.attr_mail]
    if config.attr_member_of:
        attrs.append(config.attr_member_of)
    people = _paged_search(conn, config.base_dn, config.filter, attrs)
    disabled: set[str] = set()
    if config.disabled_filter:
        both = f"(&{config.filter}{config.disabled_filter})"
        disabled = {
            normalize_dn(dn) for dn, _ in _paged_search(conn, config.base_dn, both, ["1.1"])
        }
    groups_of = {} if config.attr_member_of else _group_members(conn, config)
    entries: dict[str, DirectoryEntry] = {}
    for dn, values in people:
        uid = _text(_attr(values, config.attr_uid))
        if not uid or uid.lower() in entries:
            continue  # not a person, or a second entry with the same uid: the first one counts
        name = next((_text(_attr(values, a)) for a in config.attr_name if _attr(values, a)), "")
        if config.attr_member_of:
            groups = {first_rdn_value(g) for g in _texts(_attr(values, config.attr_member_of))}
        else:
            groups = groups_of.get(normalize_dn(dn), set()) | groups_of.get(uid.lower(), set())
        entries[uid.lower()] = DirectoryEntry(
            uid=uid,
            name=name,
            mail=_text(_attr(values, config.attr_mail)),
            dn=dn,
            groups=tuple(sorted(groups)),
            disabled=normalize_dn(dn) in disabled,
        )
    return sorted(entries.values(), key=lambda e: e.uid.lower())


def _group_members(conn, config: DirectoryConfig) -> dict[str, set[str]]:
    """Member key (normalized DN, or lower-case uid for memberUid) -> group names."""
    if not config.group_base_dn:
        return {}
    by_uid = config.group_member_attr.lower() == "memberuid"
    attrs = [config.group_member_attr, config.group_name_attr]
    members: dict[str, set[str]] = {}
    for dn, values in _paged_search(conn, config.group_base_dn, config.group_filter, attrs):
        name = _text(_attr(values, config.group_name_attr)) or first_rdn_value(dn)
        for member in _texts(_attr(values, config.group_member_attr)):
            key = member.lower() if by_uid else normalize_dn(member)
            members.setdefault(key, set()).add(name)
    return members
