"""The lab's command line: `python -m console.lab` or `python manage.py lab` (same code).

up [parts]      build and start the parts not running (all by default), and what they need
down [parts]    stop and delete the parts and what needs them (all by default, then LAB_DIR too)
reset [parts]   down, then up
status          each part's state and address, each host's namespace, link and sshd;
                exit status 0 when every part runs, 3 otherwise
env             `export NAME=value` lines of the lab contract
leftovers       what a stopped lab left behind (exit status 1 when anything)

A part is one server (`ssh` stands for every host's sshd). Hosts and addresses: net.py.
"""

import argparse
import os
import shlex
import sys
import time

from console.lab.lab import PART_GROUPS, PART_NAMES, Lab, lab_dir_from_env, missing_packages
from console.lab.proc import LabError

EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3


def build_parser(
    parser: argparse.ArgumentParser | None = None, *, demo: bool = False
) -> argparse.ArgumentParser:
    """The lab's arguments; with `demo`, `up --demo` too (manage.py only: it needs Django)."""
    parser = parser or argparse.ArgumentParser(prog="lab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command, text in (
        ("up", "build and start parts that are not running"),
        ("down", "stop parts and delete their files"),
        ("reset", "down, then up"),
    ):
        p = sub.add_parser(command, help=text)
        p.add_argument(
            "parts",
            nargs="*",
            type=part_name,
            metavar="PART",
            help=", ".join([*PART_NAMES, *PART_GROUPS]),
        )
        if demo and command == "up":
            p.add_argument(
                "--demo",
                action="store_true",
                help="also register the lab's clusters and servers in the console",
            )
    sub.add_parser("status", help="state and address of each part")
    sub.add_parser("env", help="print export lines of the lab contract")
    sub.add_parser("leftovers", help="what a stopped lab left behind (exit 1 when anything)")
    return parser


def part_name(value: str) -> str:
    if value not in PART_NAMES and value not in PART_GROUPS:
        names = ", ".join([*PART_NAMES, *PART_GROUPS])
        raise argparse.ArgumentTypeError(f"no part {value!r}; parts: {names}")
    return value


def run_command(command: str, parts: list[str] | None = None, out=sys.stdout) -> int:
    """Run one lab command; return the exit status (0 ok, 1 failed, 2 not root, 3 a part is not
    running, for `status`)."""
    if os.geteuid() != 0:
        print(
            "lab: must run as root (it starts servers as postgres, mysql, openldap...)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        lab = Lab(lab_dir_from_env())
        return COMMANDS[command](lab, list(dict.fromkeys(parts or [])), out)
    except LabError as e:
        print(f"lab {command}: {e}", file=sys.stderr)
        return 1


def say(out, line: str) -> None:
    """One line to `out` (sys.stdout or Django's OutputWrapper, which adds no second newline)."""
    out.write(line + "\n")
    out.flush()


def up(lab: Lab, parts: list[str], out) -> int:
    missing = missing_packages()
    if missing:
        raise LabError(f"missing Debian packages: {' '.join(missing)} (run make deps as root)")
    started = time.monotonic()
    lab.up(parts or None, report=lambda line: say(out, line))
    say(out, f"lab up in {time.monotonic() - started:.1f} s ({lab.dir})")
    return 0


def down(lab: Lab, parts: list[str], out) -> int:
    lab.down(parts or None, report=lambda line: say(out, line))
    return 0


def reset(lab: Lab, parts: list[str], out) -> int:
    down(lab, parts, out)
    return up(lab, parts, out)


def status(lab: Lab, parts: list[str], out) -> int:
    rows = lab.status()
    say(out, f"{'PART':10} {'STATE':10} {'HOST':7} ADDRESS")
    for name, state, host, address in rows:
        say(out, f"{name:10} {state:10} {host:7} {address}")
    say(out, "")
    say(out, f"{'HOST':10} {'ADDRESS':12} {'NAMESPACE':10} {'LINK':8} SSHD")
    for host, address, namespace, link, sshd in lab.host_status():
        say(out, f"{host:10} {address:12} {namespace:10} {link:8} {sshd}")
    return 0 if all(state == "running" for _, state, _, _ in rows) else EXIT_NOT_RUNNING


def env(lab: Lab, parts: list[str], out) -> int:
    for name, value in lab.env().items():
        say(out, f"export {name}={shlex.quote(value)}")
    missing = lab.missing()
    if missing:
        print(f"lab env: not running: {', '.join(missing)}", file=sys.stderr)
    return 0


def leftovers(lab: Lab, parts: list[str], out) -> int:
    found = lab.leftovers()
    for line in found:
        say(out, line)
    return 1 if found else 0


COMMANDS = {
    "up": up,
    "down": down,
    "reset": reset,
    "status": status,
    "env": env,
    "leftovers": leftovers,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.command, getattr(args, "parts", None))
