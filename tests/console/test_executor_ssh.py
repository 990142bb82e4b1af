"""run_command against the lab's real sshd: strict host keys, literal argv, timeouts, audit."""

import dataclasses
import socket
import subprocess
import time

import asyncssh
import pytest
from django.db import transaction

from console.executor import (
    AuthenticationFailed,
    CommandFailed,
    HostKeyRejected,
    HostUnreachable,
    run_command,
)
from console.executor.ssh import fetch_host_keys, fingerprint
from console.models import AuditEntry, JobLogLine
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def check_audit(audit_pair, assert_no_secret_stored, ssh_target):
    """Assert the latest call left its started/outcome pair with `status`, and no secret."""

    def check(status: str, *secrets: str) -> AuditEntry:
        intent, outcome = audit_pair()
        assert outcome.status == status
        assert intent.node == "lab-ssh"
        assert_no_secret_stored(ssh_target.private_key, *secrets)
        return outcome

    return check


def other_public_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


def with_known_hosts(target, known_hosts: str):
    return dataclasses.replace(target, known_hosts=known_hosts)


def test_command_output_and_exit_code_are_returned(ssh_target, check_audit):
    argv = ["sh", "-c", "echo out; echo err >&2; exit 3"]
    result = run_command(ssh_target, argv, check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    outcome = check_audit(AuditEntry.Status.FAILED)
    assert outcome.pk == result.audit_id
    assert outcome.exit_code == 3
    assert "out" in outcome.output and "err" in outcome.output


def test_successful_command_is_audited_as_succeeded(ssh_target, check_audit, settings):
    result = run_command(ssh_target, ["echo", "hello"])
    assert result.stdout == "hello\n"
    outcome = check_audit(AuditEntry.Status.SUCCEEDED)
    assert (
        outcome.command == f"timeout --kill-after=5 {settings.EXECUTOR_COMMAND_TIMEOUT} echo hello"
    )
    assert outcome.source == AuditEntry.Source.CLI
    assert outcome.exit_code == 0


def test_output_not_kept_is_returned_but_only_its_size_is_audited(ssh_target, check_audit):
    result = run_command(ssh_target, ["echo", "Zoë's salary: 1234"], keep_output=False)
    assert result.stdout == "Zoë's salary: 1234\n"
    outcome = check_audit(AuditEntry.Status.SUCCEEDED)
    assert outcome.output == "(19 characters of output, not kept)"
    assert "salary" not in outcome.output


def test_non_zero_exit_raises_command_failed_with_the_result(ssh_target, check_audit):
    with pytest.raises(CommandFailed, match="exited with code 4: boom") as failed:
        run_command(ssh_target, ["sh", "-c", "echo boom >&2; exit 4"])
    assert failed.value.result.exit_code == 4
    assert check_audit(AuditEntry.Status.FAILED).pk == failed.value.result.audit_id


def test_hostile_argument_reaches_the_program_as_one_literal_argument(
    ssh_target, check_audit, tmp_path
):
    marker = tmp_path / "injected"
    hostile = (
        f'it\'s a "test" $(touch {marker}) ; touch {marker} `touch {marker}` '
        f"&& touch {marker} | > {marker}.2 \\ $HOME\nsecond line"
    )
    result = run_command(ssh_target, ["printf", "%s", hostile])
    assert result.stdout == hostile
    assert not marker.exists() and not (tmp_path / "injected.2").exists()
    check_audit(AuditEntry.Status.SUCCEEDED)


def test_argv_given_as_a_string_is_refused(ssh_target):
    before = AuditEntry.objects.count()
    with pytest.raises(TypeError, match="list of str"):
        run_command(ssh_target, "echo hello")
    assert AuditEntry.objects.count() == before


def test_unknown_host_key_is_refused_and_nothing_runs(ssh_target, check_audit, tmp_path):
    marker = tmp_path / "ran"
    target = with_known_hosts(ssh_target, f"[10.77.0.99]:22 {other_public_key()}\n")
    with pytest.raises(HostKeyRejected) as refused:
        run_command(target, ["touch", str(marker)])
    offered = fingerprint(ssh_target.known_hosts)
    assert "lab-ssh" in str(refused.value) and ssh_target.host in str(refused.value)
    assert offered in str(refused.value) and "unknown key" in str(refused.value)
    assert not marker.exists()
    outcome = check_audit(AuditEntry.Status.FAILED)
    assert offered in outcome.error


def test_changed_host_key_is_refused_and_nothing_runs(ssh_target, check_audit, tmp_path):
    marker = tmp_path / "ran"
    pattern = ssh_target.known_hosts.split()[0]
    target = with_known_hosts(ssh_target, f"{pattern} {other_public_key()}\n")
    with pytest.raises(HostKeyRejected, match="changed key") as refused:
        run_command(target, ["touch", str(marker)])
    assert fingerprint(ssh_target.known_hosts) in str(refused.value)
    assert not marker.exists()
    check_audit(AuditEntry.Status.FAILED)


def test_empty_known_hosts_is_refused_and_nothing_runs(ssh_target, check_audit, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(HostKeyRejected, match="no host key is recorded"):
        run_command(with_known_hosts(ssh_target, ""), ["touch", str(marker)])
    assert not marker.exists()
    check_audit(AuditEntry.Status.FAILED)


def test_wrong_client_key_fails_authentication(ssh_target, check_audit, tmp_path):
    marker = tmp_path / "ran"
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    target = dataclasses.replace(ssh_target, private_key=stranger)
    with pytest.raises(AuthenticationFailed, match="refused the SSH key"):
        run_command(target, ["touch", str(marker)])
    assert not marker.exists()
    check_audit(AuditEntry.Status.FAILED, stranger)


def test_refused_port_is_unreachable_at_once(ssh_target, check_audit):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    target = dataclasses.replace(ssh_target, port=free_port)
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="cannot reach"):
        run_command(target, ["true"])
    assert time.monotonic() - started < 3
    check_audit(AuditEntry.Status.FAILED)


def test_silent_server_times_out_as_unreachable(ssh_target, check_audit, silent_port, settings):
    settings.EXECUTOR_CONNECT_TIMEOUT = 1
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="timed out after 1 s"):
        run_command(dataclasses.replace(ssh_target, host="127.0.0.1", port=silent_port), ["true"])
    assert time.monotonic() - started < 4
    check_audit(AuditEntry.Status.FAILED)


def remote_processes(target, pattern: str) -> int:
    return run_command(target, ["pgrep", "-c", "-f", pattern], check=False).stdout.strip()


def test_command_timeout_kills_the_remote_command(ssh_target, audit_pair, assert_no_secret_stored):
    with pytest.raises(CommandFailed, match="timed out after 1 s") as failed:
        run_command(ssh_target, ["sleep", "30.4242"], timeout=1)
    assert failed.value.result is not None
    intent, outcome = audit_pair()
    assert outcome.status == AuditEntry.Status.FAILED and "timed out" in outcome.error
    assert_no_secret_stored(ssh_target.private_key)
    deadline = time.monotonic() + 10
    while remote_processes(ssh_target, r"^sleep 30\.4242$") != "0":
        assert time.monotonic() < deadline, "the timed-out remote command is still running"


def test_sudo_user_runs_the_command_as_that_user(ssh_target, check_audit):
    result = run_command(ssh_target, ["whoami"], sudo_user="postgres")
    assert result.stdout == "postgres\n"
    outcome = check_audit(AuditEntry.Status.SUCCEEDED)
    assert outcome.command.endswith(" sudo -n -u postgres -- whoami")


def test_call_inside_a_transaction_raises_before_anything_is_audited_or_run(ssh_target, tmp_path):
    marker = tmp_path / "ran"
    before = AuditEntry.objects.count()
    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a database transaction"):
        run_command(ssh_target, ["touch", str(marker)])
    assert AuditEntry.objects.count() == before
    assert not marker.exists()


def test_given_secrets_are_masked_in_audit_and_job_log_but_returned(ssh_target, check_audit, dba):
    job = factories.make_job(user=dba)
    result = run_command(
        ssh_target, ["echo", "pw=Zebra-Quartz-91"], job=job, secrets=["Zebra-Quartz-91"]
    )
    assert result.stdout == "pw=Zebra-Quartz-91\n"
    outcome = check_audit(AuditEntry.Status.SUCCEEDED, "Zebra-Quartz-91")
    assert (outcome.source, outcome.job_id, outcome.actor_name) == ("job", job.pk, "dba")
    lines = list(JobLogLine.objects.filter(job=job).values_list("message", flat=True))
    assert lines[0].endswith(" echo pw=********")
    assert lines[1].startswith("[lab-ssh] succeeded, exit code 0")


def test_audit_target_label_is_recorded(ssh_target, check_audit):
    run_command(ssh_target, ["true"], label="cluster:main/db1", source="ui")
    outcome = check_audit(AuditEntry.Status.SUCCEEDED)
    assert (outcome.target, outcome.node, outcome.source) == ("cluster:main/db1", "lab-ssh", "ui")


def test_fetched_host_keys_match_the_recorded_known_hosts(ssh_target):
    fetched = fetch_host_keys(ssh_target.host, ssh_target.port)
    assert fetched.split() == ssh_target.known_hosts.split()


def test_fingerprint_matches_ssh_keygen(ssh_target, lab_env):
    keygen = subprocess.run(
        ["ssh-keygen", "-l", "-f", lab_env["LAB_SSH_KNOWN_HOSTS"]],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert fingerprint(ssh_target.known_hosts) == keygen.stdout.split()[1]


def test_fetching_host_keys_from_a_closed_port_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    with pytest.raises(HostUnreachable):
        fetch_host_keys("127.0.0.1", free_port, timeout=3)
