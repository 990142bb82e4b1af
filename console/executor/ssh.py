"""Commands over SSH (asyncssh), with strict host keys, timeouts and the audit pair.

Every call opens one connection, runs one command and closes it: workers are synchronous and a
call is short next to the work it starts, so there is no connection pool to go stale.
"""

import asyncio
import shlex
import socket
from collections.abc import Collection
from dataclasses import dataclass

import asyncssh
from django.conf import settings

from console import audit
from console.executor import (
    AuthenticationFailed,
    CommandFailed,
    CommandResult,
    ExecutorError,
    HostKeyRejected,
    HostUnreachable,
    SshTarget,
)
from console.executor._audit import ensure_outside_transaction, remote_call
from console.executor.redact import redact

# Host key algorithms asked for one at a time when fetching a server's keys for registration.
_HOST_KEY_ALGS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
)
# A timed-out command is ended on the host by coreutils `timeout`: TERM at the deadline, KILL
# _KILL_AFTER seconds later. The client waits _CLIENT_GRACE more before giving up on the host.
_KILL_AFTER = 5
_CLIENT_GRACE = 10
_TIMEOUT_EXITS = (124, 137)  # timeout(1): the command was sent TERM, or KILL
_STDERR_TAIL = 500


@dataclass
class _Outcome:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False


class _StrictClient(asyncssh.SSHClient):
    """Accepts only the keys in known_hosts; remembers the key it refused, to name it."""

    def __init__(self) -> None:
        self.refused_key: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key) -> bool:
        self.refused_key = key
        return False


def _ssh_target(target) -> SshTarget:
    if isinstance(target, SshTarget):
        return target
    if hasattr(target, "ssh_target"):
        return target.ssh_target()
    raise TypeError(f"not an SSH target: {type(target).__name__}")


def _endpoint(t: SshTarget) -> str:
    return f"{t.name} ({t.host}:{t.port})"


def run_command(
    target,
    argv: list[str],
    *,
    actor=None,
    job=None,
    action: str = audit.REMOTE_COMMAND,
    source: str | None = None,
    label: str = "",
    sudo_user: str | None = None,
    timeout: float | None = None,
    check: bool = True,
    secrets=(),
    input: str | None = None,
    keep_output: bool = True,
    job_log: bool = True,
    ok_exits: Collection[int] = (0,),
) -> CommandResult:
    """Run `argv` on the target over SSH and return its exit code and output.

    Guarantees: the command runs only if the host presents a key recorded in the target's
    known_hosts (else HostKeyRejected, nothing run); each argument reaches the remote program as
    one literal argument (`shlex.join`); the command runs under coreutils `timeout` on the host
    (see `remote_argv`), so one still running after `timeout` seconds is sent TERM, then KILL,
    and CommandFailed is raised; a `started` audit entry is written before connecting and an
    outcome entry after, outside any transaction (inside one this raises RuntimeError first);
    the target's private key and `secrets` are masked in both and in the job log. With
    `check`, a non-zero exit raises CommandFailed carrying the result. `keep_output=False`
    records only the output's size in the outcome entry (for reads of logs and data);
    `job_log=False` audits the call (naming the job) without writing it to the job's log.

    `ok_exits` are the exit codes the caller expects as a normal answer (`pg_isready` exits 2
    when nothing answers, `pg_ctl status` 3 when no server runs, `test -e` 1 when the path is
    missing): such an exit is recorded as succeeded, with its code, in the outcome entry and
    the job log, and `check` raises only for an exit outside them. The default `(0,)` keeps
    every other non-zero exit a failure. A timeout is a failure whatever its exit code. The
    returned CommandResult is the same either way.
    """
    if isinstance(argv, (str, bytes)) or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a list of str, never a shell string")
    ok_exits = _exit_codes(ok_exits)
    ensure_outside_transaction()
    t = _ssh_target(target)
    timeout = timeout or settings.EXECUTOR_COMMAND_TIMEOUT
    command = shlex.join(remote_argv(argv, timeout=timeout, sudo_user=sudo_user))
    with remote_call(
        action=action,
        node=t.name,
        command=command,
        actor=actor,
        job=job,
        source=source,
        label=label,
        secrets=(*secrets, t.private_key),
        keep_output=keep_output,
        job_log=job_log,
    ) as call:
        out = asyncio.run(_run(t, command, timeout + _KILL_AFTER + _CLIENT_GRACE, input))
        out.timed_out = out.timed_out or (
            out.exit_code in _TIMEOUT_EXITS and call.duration_ms >= timeout * 1000
        )
        call.exit_code = out.exit_code
        call.output = out.stdout + (f"\n[stderr]\n{out.stderr}" if out.stderr else "")
        failure = _failure(out, argv, t.name, timeout, call.secrets, ok_exits)
        if failure:
            call.fail(failure)
    result = CommandResult(
        exit_code=out.exit_code if out.exit_code is not None else -1,
        stdout=out.stdout,
        stderr=out.stderr,
        duration_ms=call.duration_ms,
        audit_id=call.outcome_id,
    )
    if out.timed_out or (check and out.exit_code not in ok_exits):
        raise CommandFailed(redact(failure, call.secrets), result)
    return result


def _exit_codes(ok_exits) -> frozenset[int]:
    """`ok_exits` as a set of ints; a bare int or a string is a caller's mistake, refused."""
    if isinstance(ok_exits, (int, str, bytes)) or not all(
        isinstance(code, int) and not isinstance(code, bool) for code in ok_exits
    ):
        raise TypeError("ok_exits must be a collection of int exit codes, like (0, 2)")
    return frozenset(ok_exits)


def _failure(
    out: _Outcome, argv: list[str], node: str, timeout: float, secrets, ok_exits=frozenset({0})
) -> str:
    """What went wrong, for the operator; empty when nothing did (an exit in `ok_exits`).
    The stderr tail is redacted before it is cut, so no half of a secret is left at the cut;
    the caller redacts the rest."""
    if out.timed_out:
        return f"{shlex.join(argv)[:200]} on {node} timed out after {timeout:g} s"
    if out.exit_code not in ok_exits:
        tail = redact(out.stderr.strip(), secrets)[-_STDERR_TAIL:]
        failure = f"{shlex.join(argv)[:200]} on {node} exited with code {out.exit_code}"
        return failure + (f": {tail}" if tail else "")
    return ""


def _connect_options(t: SshTarget) -> dict:
    if not t.private_key:
        raise AuthenticationFailed(f"no SSH private key configured for {t.name}")
    try:
        client_key = asyncssh.import_private_key(t.private_key)
    except (asyncssh.KeyImportError, ValueError):
        raise AuthenticationFailed(f"the SSH private key for {t.name} cannot be read") from None
    try:
        # Always an SSHKnownHosts object: an empty string would make asyncssh fall back to
        # ~/.ssh/known_hosts, and None would accept any key.
        known_hosts = asyncssh.import_known_hosts(t.known_hosts or "")
    except (ValueError, asyncssh.KeyImportError) as e:
        raise HostKeyRejected(
            f"the known hosts recorded for {t.name} cannot be read: {e}"
        ) from None
    timeout = settings.EXECUTOR_CONNECT_TIMEOUT
    return {
        "port": t.port,
        "username": t.username,
        "known_hosts": known_hosts,
        "client_keys": [client_key],
        "config": None,  # never read ~/.ssh/config
        "agent_path": None,
        "x509_trusted_certs": None,
        "password_auth": False,
        "kbdint_auth": False,
        "gss_auth": False,
        "host_based_auth": False,
        "preferred_auth": "publickey",
        "connect_timeout": timeout,
        "login_timeout": timeout,
        "keepalive_interval": 15,
        "keepalive_count_max": 4,
    }


async def _connect(t: SshTarget) -> asyncssh.SSHClientConnection:
    options = _connect_options(t)
    client: _StrictClient | None = None

    def factory() -> _StrictClient:
        nonlocal client
        client = _StrictClient()
        return client

    try:
        return await asyncssh.connect(t.host, client_factory=factory, **options)
    except asyncssh.HostKeyNotVerifiable:
        raise HostKeyRejected(_host_key_message(t, client and client.refused_key)) from None
    except asyncssh.PermissionDenied:
        raise AuthenticationFailed(
            f"{_endpoint(t)} refused the SSH key for user {t.username}"
        ) from None
    except TimeoutError:
        raise HostUnreachable(
            f"connecting to {_endpoint(t)} timed out after {options['connect_timeout']} s"
        ) from None
    except (OSError, asyncssh.DisconnectError) as e:
        raise HostUnreachable(f"cannot reach {_endpoint(t)}: {_reason(e)}") from None


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _host_key_message(t: SshTarget, key) -> str:
    offered = f"{key.get_algorithm()} {key.get_fingerprint('sha256')}" if key else "an unknown key"
    known = asyncssh.import_known_hosts(t.known_hosts or "")
    recorded = known.match(t.host, _address(t.host), None if t.port == 22 else t.port)[0]
    if not (t.known_hosts or "").strip():
        what = "no host key is recorded for it"
    elif recorded:
        what = "its host key is NOT the one recorded at registration (changed key)"
    else:
        what = "no recorded host key matches this host (unknown key)"
    return (
        f"refused to connect to {_endpoint(t)}: {what}; the server offered {offered}. "
        "Nothing was run. Confirm the fingerprint out of band before recording a new key."
    )


def _address(host: str) -> str:
    try:
        return socket.getaddrinfo(host, None)[0][4][0]
    except OSError:
        return host


async def _run(t: SshTarget, command: str, timeout: float, input: str | None) -> _Outcome:
    conn = await _connect(t)
    try:
        proc = await conn.create_process(command, input=input, encoding="utf-8", errors="replace")
        try:
            done = await proc.wait(check=False, timeout=timeout)
        except asyncssh.TimeoutError as e:
            # The host did not end the command itself (it is stuck or the link is down).
            proc.close()
            return _Outcome(e.exit_status, _text(e.stdout), _text(e.stderr), timed_out=True)
        return _Outcome(done.exit_status, _text(done.stdout), _text(done.stderr))
    except (OSError, asyncssh.Error) as e:
        raise ExecutorError(
            f"the connection to {_endpoint(t)} failed while the command ran, so its outcome is "
            f"unknown: {_reason(e)}"
        ) from None
    finally:
        conn.close()
        await conn.wait_closed()


def remote_argv(argv: list[str], *, timeout: float, sudo_user: str | None = None) -> list[str]:
    """The argv run on the host: `argv`, under sudo when asked, under coreutils `timeout`.

    The timeout is enforced on the host because closing an SSH channel does not end a command
    run without a terminal, and OpenSSH refuses channel signals to root sessions ("session
    signalling requires privilege separation"). `timeout` puts the command in its own process
    group and signals the whole group, so children (sudo and what it runs) end too.
    """
    seconds = f"{timeout:.3f}".rstrip("0").rstrip(".")
    wrapped = ["timeout", f"--kill-after={_KILL_AFTER}", seconds]
    if sudo_user:
        wrapped += ["sudo", "-n", "-u", sudo_user, "--"]
    return [*wrapped, *argv]


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def fetch_host_keys(host: str, port: int = 22, timeout: float | None = None) -> str:
    """Return known_hosts lines for every host key the server offers, for registration.

    The keys are not trusted by fetching them: the DBA compares their `fingerprint()` with the
    one the host itself shows (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`) before they are
    recorded. Raises HostUnreachable when the server cannot be reached.
    """
    return asyncio.run(_fetch_host_keys(host, port, timeout or settings.EXECUTOR_CONNECT_TIMEOUT))


async def _fetch_host_keys(host: str, port: int, timeout: float) -> str:
    pattern = host if port == 22 else f"[{host}]:{port}"
    lines: list[str] = []
    last_error: BaseException | None = None
    for alg in _HOST_KEY_ALGS:
        try:
            key = await asyncio.wait_for(
                asyncssh.get_server_host_key(host, port, server_host_key_algs=[alg], config=None),
                timeout,
            )
        except (ConnectionRefusedError, TimeoutError, socket.gaierror) as e:
            raise HostUnreachable(f"cannot reach {host}:{port}: {_reason(e)}") from None
        except (OSError, asyncssh.Error) as e:  # sshd hangs up when it has no key of this type
            last_error = e
            continue
        if key is not None:
            line = f"{pattern} {key.export_public_key('openssh').decode().strip()}"
            if line not in lines:
                lines.append(line)
    if not lines:
        raise HostUnreachable(f"{host}:{port} offered no usable host key: {last_error}")
    return "\n".join(lines) + "\n"


def fingerprint(known_hosts_line: str) -> str:
    """The SHA256 fingerprint of the key in a known_hosts line (or a bare public key line),
    in the form `ssh-keygen -l` prints: `SHA256:<base64 without padding>`."""
    tokens = known_hosts_line.split()
    if tokens and tokens[0].startswith("@"):
        tokens = tokens[1:]
    for start in (0, 1):
        try:
            key = asyncssh.import_public_key(" ".join(tokens[start : start + 2]))
        except (asyncssh.KeyImportError, ValueError):
            continue
        return key.get_fingerprint("sha256")
    raise ValueError("no public key found in this known_hosts line")
