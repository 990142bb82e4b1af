"""run_command's ok_exits against the lab's real sshd: an exit the caller expects as an answer
(pg_isready 2, pg_ctl status 3) is recorded as succeeded, with its code, in the outcome entry
and the job log; any other non-zero exit stays a failure, as it is by default."""

import pytest

from console.executor import CommandFailed, run_command
from console.models import AuditEntry, JobLogLine
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def exits(code: int) -> list[str]:
    return ["sh", "-c", f"echo answer; echo detail >&2; exit {code}"]


def log_lines(job) -> list[tuple[str, str]]:
    return list(JobLogLine.objects.filter(job=job).order_by("pk").values_list("level", "message"))


def test_an_expected_exit_is_a_success_in_audit_and_job_log(ssh_target, audit_pair, dba):
    job = factories.make_job(user=dba)
    result = run_command(ssh_target, exits(2), job=job, ok_exits=(0, 2))
    # The result is what the host answered, whatever ok_exits says.
    assert (result.exit_code, result.stdout, result.stderr) == (2, "answer\n", "detail\n")
    intent, outcome = audit_pair()
    assert outcome.pk == result.audit_id
    assert (outcome.status, outcome.exit_code, outcome.error) == ("succeeded", 2, "")
    assert "answer" in outcome.output
    (command_level, command), (level, summary) = log_lines(job)
    assert command.endswith("exit 2'")
    assert level == JobLogLine.Level.INFO
    assert summary.startswith("[lab-ssh] succeeded, exit code 2 (an expected answer), ")


def test_an_expected_exit_does_not_raise_with_check(ssh_target, audit_pair):
    result = run_command(ssh_target, exits(3), check=True, ok_exits=[3, 4])
    assert result.exit_code == 3
    assert audit_pair()[1].status == AuditEntry.Status.SUCCEEDED


def test_an_exit_outside_ok_exits_is_a_failure_and_raises(ssh_target, audit_pair, dba):
    job = factories.make_job(user=dba)
    with pytest.raises(CommandFailed) as failed:
        run_command(ssh_target, exits(3), job=job, ok_exits=(0, 2))
    assert failed.value.result.exit_code == 3
    assert "exited with code 3: detail" in str(failed.value)
    _, outcome = audit_pair()
    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    assert "exited with code 3" in outcome.error
    level, summary = log_lines(job)[-1]
    assert level == JobLogLine.Level.ERROR
    assert summary.startswith("[lab-ssh] failed, exit code 3, ")
    assert "expected" not in summary


def test_an_exit_outside_ok_exits_without_check_is_recorded_failed_and_returned(
    ssh_target, audit_pair, dba
):
    job = factories.make_job(user=dba)
    result = run_command(ssh_target, exits(3), job=job, check=False, ok_exits=(0, 2))
    assert result.exit_code == 3
    assert audit_pair()[1].status == AuditEntry.Status.FAILED
    assert log_lines(job)[-1][0] == JobLogLine.Level.ERROR


def test_zero_is_not_implied_when_left_out_of_ok_exits(ssh_target, audit_pair):
    with pytest.raises(CommandFailed):
        run_command(ssh_target, exits(0), ok_exits=(3,))
    assert audit_pair()[1].status == AuditEntry.Status.FAILED


def test_the_default_still_treats_exit_1_as_a_failure(ssh_target, audit_pair, dba):
    job = factories.make_job(user=dba)
    with pytest.raises(CommandFailed):
        run_command(ssh_target, exits(1), job=job)
    assert audit_pair()[1].status == AuditEntry.Status.FAILED
    result = run_command(ssh_target, exits(1), job=job, check=False)
    assert result.exit_code == 1
    _, outcome = audit_pair()
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    level, summary = log_lines(job)[-1]
    assert (level, summary.split(",")[0]) == (JobLogLine.Level.ERROR, "[lab-ssh] failed")
    assert run_command(ssh_target, exits(0), job=job).exit_code == 0
    level, summary = log_lines(job)[-1]
    assert level == JobLogLine.Level.INFO
    assert summary.startswith("[lab-ssh] succeeded, exit code 0, ")


def test_a_timeout_is_a_failure_even_when_its_exit_code_is_listed(ssh_target, audit_pair):
    with pytest.raises(CommandFailed, match="timed out"):
        run_command(ssh_target, ["sleep", "30"], timeout=1, ok_exits=(0, 124, 137))
    assert audit_pair()[1].status == AuditEntry.Status.FAILED


@pytest.mark.parametrize("bad", [2, "02", (0, "2"), (0, True)])
def test_ok_exits_that_are_not_int_codes_are_refused_before_anything_runs(ssh_target, bad):
    before = AuditEntry.objects.count()
    with pytest.raises(TypeError, match="ok_exits"):
        run_command(ssh_target, ["true"], ok_exits=bad)
    assert AuditEntry.objects.count() == before
