"""Reading the real pg_rman 1.3.19 captures in tests/backups/fixtures/pg_rman/ (a byte-exact
copy of ../shared/fixtures/pg_rman/, whose README describes every file)."""

import shlex
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "pg_rman"


@dataclass(frozen=True)
class Capture:
    name: str
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str


def raw(name: str) -> str:
    """A raw file (catalog files have no header). Read as bytes so \\r survives."""
    return (FIXTURES / name).read_bytes().decode()


def capture(name: str) -> Capture:
    """A `*.txt` capture: `# command:`, `# exit:`, then stdout and stderr verbatim."""
    text = raw(name)
    head, _, rest = text.partition("# --- stdout ---\n")
    stdout, _, stderr = rest.partition("# --- stderr ---\n")
    lines = head.splitlines()
    command = lines[0].removeprefix("# command: ")
    exit_code = int(lines[1].removeprefix("# exit: "))
    return Capture(name, shlex.split(command), exit_code, stdout, stderr)


def pg_rman_captures() -> list[str]:
    """Every capture of a pg_rman command (not psql, find or a log excerpt)."""
    names = []
    for path in sorted(FIXTURES.glob("*.txt")):
        first = path.read_bytes().split(b"\n", 1)[0]
        if first.startswith(b"# command: pg_rman"):
            names.append(path.name)
    return names
