"""The security baseline: checks of a MariaDB/MySQL or PostgreSQL server, and their fixes.

Each check reads the server through the executor only (SQL for the server's facts, SSH for
files) and returns a `Verdict`: pass, fail, review (a person must look) or error (the check
could not be made), with evidence written for a DBA. Checks of one node share a `Probe`, which
caches what was read, so a full pass costs a few statements and commands. A check with a fix
names it; the fix refuses before touching anything when it would do harm (the console's own
account, a `test` database holding tables), undoes what it did when a later step fails (the
config file backup), and is safe to run again. clusters.actions.baseline runs checks and fixes
as jobs and records results and audit entries.

MariaDB/MySQL (the mysql_secure_installation steps and more): local_infile off at run time and
in the option files; no anonymous accounts; root only from localhost; no `test` database nor
grants on it; every interactive OS user's ~/.mysql_history a link to /dev/null; no account
without a password; root authenticates by unix_socket or a password. The account queries use
mysql.global_priv (MariaDB 10.4 and later).

PostgreSQL: password_encryption is scram-sha-256; no `trust` for host connections; local
connections of postgres not `trust`; ssl; listen_addresses not '*' unless a rule admits every
address; superusers besides postgres listed for review. Rules and listen_addresses are fixed
on the pg_hba and settings pages, not here.

Modules: core.py (Verdict, Check, Probe, refusals, account quoting, atomic file replacement),
mariadb.py, history.py (~/.mysql_history), postgresql.py; this one holds the registry.
"""

import json

from clusters.baseline import history, mariadb, postgresql
from clusters.baseline.core import (
    ERROR,
    FAIL,
    PASS,
    REVIEW,
    Check,
    FixFailed,
    FixRefused,
    Probe,
    Verdict,
    quote_account,
)
from console.executor import ExecutorError

__all__ = [
    "CHECKS", "ERROR", "FAIL", "PASS", "REVIEW", "Check", "FixFailed", "FixRefused", "Probe",
    "Verdict", "checks_for", "evaluate", "quote_account", "run_checks",
]  # fmt: skip

CHECKS: dict[str, Check] = {
    c.key: c
    for c in (
        Check("mariadb.local_infile", "mariadb", "local_infile off (server and option files)",
              mariadb.check_local_infile, mariadb.fix_local_infile,
              "write local-infile=0 and turn it off"),
        Check("mariadb.anonymous_accounts", "mariadb", "no anonymous accounts",
              mariadb.check_anonymous, mariadb.fix_anonymous, "drop the anonymous accounts"),
        Check("mariadb.remote_root", "mariadb", "root only from localhost",
              mariadb.check_remote_root, mariadb.fix_remote_root, "drop root's remote accounts"),
        Check("mariadb.test_database", "mariadb", "no test database nor grants on it",
              mariadb.check_test_database, mariadb.fix_test_database, "drop test and its grants"),
        Check("mariadb.mysql_history", "mariadb", "~/.mysql_history is a link to /dev/null",
              history.check_history, history.fix_history, "link each history to /dev/null"),
        Check("mariadb.no_password", "mariadb", "no account without a password",
              mariadb.check_no_password, mariadb.fix_no_password, "lock those accounts"),
        Check("mariadb.root_auth", "mariadb", "root authenticates (unix_socket or password)",
              mariadb.check_root_auth),
        Check("pg.password_encryption", "postgresql", "password_encryption is scram-sha-256",
              postgresql.check_password_encryption, postgresql.fix_password_encryption,
              "ALTER SYSTEM SET password_encryption = 'scram-sha-256' and reload"),
        Check("pg.hba_trust_host", "postgresql", "no trust rule for host connections",
              postgresql.check_hba_trust_host, fix_there="hba"),
        Check("pg.local_postgres", "postgresql", "local logins of postgres are not trust",
              postgresql.check_local_postgres, fix_there="hba"),
        Check("pg.ssl", "postgresql", "ssl", postgresql.check_ssl, fix_there="settings"),
        Check("pg.listen_addresses", "postgresql", "listen_addresses is not '*'",
              postgresql.check_listen_addresses, fix_there="settings"),
        Check("pg.superusers", "postgresql", "superusers besides postgres",
              postgresql.check_superusers),
    )
}  # fmt: skip


def checks_for(node) -> list[Check]:
    return [c for c in CHECKS.values() if c.service == node.service]


def evaluate(check: Check, probe: Probe) -> Verdict:
    """Run one check; a server that cannot be read gives an error verdict, never an exception."""
    try:
        return check.evaluate(probe)
    except (ExecutorError, FixRefused) as e:
        return Verdict(ERROR, f"the check could not be made: {e}")
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        return Verdict(ERROR, f"the check could not read the server's answer: {e!r}")


def run_checks(node, *, actor=None, job=None, keys=None) -> dict[str, Verdict]:
    """Every check of the node's service (or only `keys`), in registry order, sharing a Probe."""
    probe = Probe(node, actor=actor, job=job)
    return {c.key: evaluate(c, probe) for c in checks_for(node) if keys is None or c.key in keys}
