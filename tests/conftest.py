"""Shared fixtures. Servers come from the lab (`python manage.py lab up`, run by `make test`)."""

import os
from collections.abc import Mapping
from types import MappingProxyType

import pytest

from tests import factories
from tests._smtp import Inbox, free_port


# Personas: signed-in users of each kind, and one in no persona group.
@pytest.fixture
def dba(db):
    return factories.make_user("dba", persona="dba", first_name="Dana", last_name="Admin")


@pytest.fixture
def helpdesk(db):
    return factories.make_user("helpdesk", persona="helpdesk")


@pytest.fixture
def manager(db):
    return factories.make_user("manager", persona="manager")


@pytest.fixture
def auditor(db):
    return factories.make_user("auditor", persona="auditor")


@pytest.fixture
def outsider(db):
    return factories.make_user("outsider")


# --- The lab (console/lab): servers started by `make test`, variables loaded from `lab env` -----
LAB_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "LAB_DIR",
    "LAB_SSH_HOST",
    "LAB_SSH_PORT",
    "LAB_SSH_USER",
    "LAB_SSH_KEY",
    "LAB_SSH_KNOWN_HOSTS",
    "LAB_PG_HOST",
    "LAB_PG_PORT",
    "LAB_PG_USER",
    "LAB_PG_PASSWORD",
    "LAB_MYSQL_HOST",
    "LAB_MYSQL_PORT",
    "LAB_MYSQL_USER",
    "LAB_MYSQL_PASSWORD",
    "LAB_LDAP_URI",
    "LAB_LDAP_BASE",
    "LAB_LDAP_ADMIN_DN",
    "LAB_LDAP_ADMIN_PASSWORD",
    "LAB_NET",
    "LAB_BRIDGE",
    "LAB_HOSTS",
    "LAB_KNOWN_HOSTS",
)


@pytest.fixture(scope="session")
def lab_env() -> Mapping[str, str]:
    """The lab's variables (read-only mapping). Fails, never skips, when the lab env is not
    loaded: a test that needs a server must not pass without one."""
    missing = [name for name in LAB_VARIABLES if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"lab environment not loaded: {', '.join(missing)} unset. Run `make test`, or as root: "
            'python manage.py lab up; set -a; eval "$(python manage.py lab env)"; set +a',
            pytrace=False,
        )
    return MappingProxyType({name: os.environ[name] for name in LAB_VARIABLES})


@pytest.fixture(scope="session")
def lab(lab_env):
    """The running lab as a console.lab.lab.Lab: `lab.host("db1")` (name, address, namespace,
    argv), `lab.parts`, `lab.load()` (records: ports, passwords); faults in console.lab.faults.

    Lifecycle: scripts/test.sh (`make test`) brings the lab up before pytest starts, because
    DATABASE_URL must be known before Django is, and down after pytest ends, also on failure
    or Ctrl-C, then checks that nothing is left. This fixture starts nothing: it checks that the
    lab's bridge is up (never send traffic to a lab address without it) and hands the lab over.
    A module that breaks parts asks `rebuild_parts` to rebuild them after its tests.
    """
    from pathlib import Path

    from console.lab.lab import Lab
    from console.lab.net import require_lab_network

    require_lab_network(lab_env["LAB_BRIDGE"])
    return Lab(Path(lab_env["LAB_DIR"]))


@pytest.fixture(scope="module")
def rebuild_parts(lab):
    """Call `rebuild_parts("ssh-my1", "mariadb")` (or a group: "ssh") in a test that breaks
    those parts (crashes their host, stops or damages the server): after the module's last
    test they are rebuilt from nothing (`lab down <parts>`, then `lab up <parts>`), keeping their
    ports and passwords, so the next module finds them as `lab up` left them. The other parts
    are not touched."""
    broken: list[str] = []

    def register(*names: str) -> None:
        broken.extend(name for name in names if name not in broken)

    yield register
    if broken:
        lab.down(broken, report=lambda line: None)
        lab.up(broken, report=lambda line: None)


# --- Executor fixtures (owner: executor; console/executor tests) ------------------------------
# Targets for the lab's sshd, PostgreSQL and MariaDB (from lab_env, so they fail without the
# lab), and checks shared by the executor tests.


@pytest.fixture
def ssh_target(lab_env):
    """The lab's sshd as an SshTarget: its recorded host key and the throwaway client key."""
    from pathlib import Path

    from console.executor import SshTarget

    return SshTarget(
        name="lab-ssh",
        host=lab_env["LAB_SSH_HOST"],
        port=int(lab_env["LAB_SSH_PORT"]),
        username=lab_env["LAB_SSH_USER"],
        known_hosts=Path(lab_env["LAB_SSH_KNOWN_HOSTS"]).read_text(),
        private_key=Path(lab_env["LAB_SSH_KEY"]).read_text(),
    )


@pytest.fixture
def pg_target(lab_env):
    from console.executor import PgTarget

    return PgTarget(
        name="lab-pg",
        host=lab_env["LAB_PG_HOST"],
        port=int(lab_env["LAB_PG_PORT"]),
        username=lab_env["LAB_PG_USER"],
        password=lab_env["LAB_PG_PASSWORD"],
        sslmode="disable",
    )


@pytest.fixture
def mysql_target(lab_env):
    from console.executor import MysqlTarget

    return MysqlTarget(
        name="lab-mariadb",
        host=lab_env["LAB_MYSQL_HOST"],
        port=int(lab_env["LAB_MYSQL_PORT"]),
        username=lab_env["LAB_MYSQL_USER"],
        password=lab_env["LAB_MYSQL_PASSWORD"],
    )


@pytest.fixture
def audit_pair():
    """Return a function giving the (started, outcome) entries of the latest remote call,
    after checking that they form one pair: intent first, outcome pointing at it."""
    from console.models import AuditEntry

    def latest(action: str | None = None):
        entries = AuditEntry.objects.order_by("-id")
        if action is not None:
            entries = entries.filter(action=action)
        outcome, intent = list(entries[:2])
        assert intent.status == AuditEntry.Status.STARTED
        assert outcome.intent_id == intent.pk
        assert outcome.status in (AuditEntry.Status.SUCCEEDED, AuditEntry.Status.FAILED)
        assert (outcome.action, outcome.node, outcome.command, outcome.target) == (
            intent.action,
            intent.node,
            intent.command,
            intent.target,
        )
        assert outcome.duration_ms is not None
        return intent, outcome

    return latest


@pytest.fixture
def assert_no_secret_stored():
    """Return a function that fails if any given secret (or a long line of one, for keys)
    appears in any audit entry field or job log line."""
    from console.models import AuditEntry, JobLogLine

    def check(*secrets: str) -> None:
        needles = set()
        for secret in secrets:
            needles.add(secret)
            needles.update(line for line in secret.splitlines() if len(line) >= 16)
        fields = [
            f.name
            for f in AuditEntry._meta.fields
            if f.get_internal_type() in ("CharField", "TextField")
        ]
        texts = [str(v) for row in AuditEntry.objects.values_list(*fields) for v in row]
        texts += list(JobLogLine.objects.values_list("message", flat=True))
        for needle in needles:
            for text in texts:
                assert needle not in text, "a secret was stored in an audit entry or job log"

    return check


@pytest.fixture
def silent_port():
    """A loopback port that accepts TCP connections (the kernel's backlog) but never answers:
    how a hung server looks to a client, so connect timeouts can be tested safely."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (tests/_smtp.py): (its aiosmtpd controller, its inbox)."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()
