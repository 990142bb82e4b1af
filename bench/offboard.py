"""Benchmark (issue 6 part 6): offboard one person who has accounts on 200 registered servers.

Runs on the lab's metadata PostgreSQL (DATABASE_URL, as `make bench` sets it) in a throwaway
database of its own. Registers the lab (console.lab.demo), then SERVERS servers in clusters of
their own: half copies of db1 (PostgreSQL primary), half copies of my1 (MariaDB), distinct names,
the lab's real addresses. On the real servers it creates one distinct account per registered
server (PostgreSQL roles on db1, MariaDB users on my1), each linked in the console to one Person
as a personal account on its own cluster, so the person has an account on every server.

Measured, in the same run:
- the offboarding end to end, as a helpdesk user starts it: start_offboarding (typed
  confirmation, run, audit entry, job queued) and the real job (users.offboard_person, run
  eagerly in this process instead of a Celery worker) that on every cluster at once reads the
  account, locks it, ends its sessions and verifies the lock by reading it back; every remote
  statement audited by the executor. Target: <= TARGET_S and the run `offboarded` with every
  account verified;
- the undo (unlock, audited; the same pool), for information;
- the sequential baseline: the very same offboarding (start_offboarding and the same job, the
  same per-account code) with a pool of one worker, so the same accounts are locked one server
  after another. Target: the offboarding at least TARGET_SPEEDUP times faster.
- with --lock-account, also users.dbops.lock_account on each account one after another (the
  lifecycle primitive: a connection per statement, no verification), for information.
For each, the CPU seconds of the console process, the metadata database and the lab's servers
(/proc), the connections the servers accepted (their own counters), the console database's
ORM statements, audit entries and audit writes, per account; and the bound they put on the
time on this machine's CPUs. Then every account created is dropped from the servers, and the
throwaway database goes.

The lab's servers run on this machine (2 CPUs shared with the metadata database and other
work): without --delay-ms there is no wait to overlap, and the parallel job can beat the
sequential one only by the CPUs the sequential one leaves idle. Figures are noisy; the load is
printed. Prints its figures, ends with one JSON line (name, figures, targets, ok).

The fleet (the lab's servers set up and cleaned, the copies registered) is in
bench/_offboard_fleet.py, the measurement (Meter and its counters) in bench/_offboard_meter.py;
here, the phases in order and the figures they give.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402
from _offboard_fleet import (  # noqa: E402
    SERVERS,
    create_accounts,
    drop_accounts,
    locked_on_servers,
    register,
    start_relay,
)
from _offboard_meter import Meter, count_audit, count_statements, show  # noqa: E402

TARGET_S = 5.0
TARGET_SPEEDUP = 10.0
BENCH_DB = "bench_offboard"
UID = "bench.leaver"


def offboard(person, actor, workers: int) -> tuple[float, object]:
    """start_offboarding as the page calls it; the job runs eagerly when the run commits, with
    a pool of `workers` (1: the sequential baseline, the very same code)."""
    from console.celery import app
    from users.actions import offboarding

    app.conf.task_always_eager = True  # the job in this process: no broker, no worker latency
    # The first enqueue of a process imports every app's tasks module (about 1 s here); a web
    # or worker process has done it long before a helpdesk user offboards anyone.
    app.loader.import_default_modules()
    default, offboarding.WORKERS = offboarding.WORKERS, workers
    try:
        run = offboarding.start_offboarding(person, actor=actor, confirmation=person.uid)
    finally:
        offboarding.WORKERS = default
    run.refresh_from_db()
    return run


def check_run(run, expected_locked: int) -> dict:
    from console.models import Job
    from users.models import OffboardingStep

    steps = run.steps.filter(kind=OffboardingStep.Kind.LOCK)
    locked_pg, locked_my = locked_on_servers()
    return {"run_state": run.state, "job_status": Job.objects.get(pk=run.job_id).status,
            "verified": steps.filter(result="verified").count(),
            "locked_on_servers": locked_pg + locked_my,
            "ok": run.state == "offboarded" and locked_pg + locked_my == expected_locked,
            }  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="reach the servers through bench/_delay.py, each packet held this "
                        "long each way (default: directly, no latency)")  # fmt: skip
    parser.add_argument(
        "--lock-account",
        action="store_true",
        help="also time users.dbops.lock_account one account after another",
    )
    return parser.parse_args()


def prepare(via, delay_ms: float) -> tuple:
    """The throwaway database migrated and the lab registered; SERVERS copies of its servers,
    each with one account of the leaver (created on the real servers); the counters installed.
    Returns the helpdesk user, the person and how many accounts they have."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from django.db.backends.signals import connection_created

    from console.lab.demo import register_demo
    from users.actions.offboarding import WORKERS
    from users.models import Person

    call_command("migrate", verbosity=0)
    register_demo(os.environ)
    drop_accounts()  # what an earlier run that died may have left
    actor = get_user_model().objects.create_user("bench-helpdesk")
    person = Person.objects.create(uid=UID, name="Bench Leaver", mail="leaver@example.org")
    accounts = register(person, via)
    n = len(accounts)
    create_accounts([a.name for a in accounts if a.host == ""],
                    [a.name for a in accounts if a.host == "%"])  # fmt: skip
    connections.close_all()  # from here every console connection gets the statement counter
    connection_created.connect(count_statements)
    count_audit()
    print(f"registered {SERVERS} servers ({SERVERS // 2} copies of db1, {SERVERS // 2} of "
          f"my1, a cluster each) and created {n} accounts of {UID}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"{WORKERS} workers; latency added: {delay_ms:g} ms each way")  # fmt: skip
    return actor, person, n


def measure(person, actor, n: int, relay) -> dict:
    """The offboarding with the pool, its undo, and the same offboarding with one worker (then
    undone too), each measured and shown."""
    from users.actions.offboarding import WORKERS, undo_offboarding

    meter = Meter(relay)
    run = offboard(person, actor, WORKERS)
    job = meter.stop(n)
    job_check = check_run(run, n)
    show(f"offboarding, {WORKERS} workers", job)
    print(f"  run {job_check['run_state']}, job {job_check['job_status']}, "
          f"{job_check['verified']}/{n} verified; servers say {job_check['locked_on_servers']}"
          f" accounts locked")  # fmt: skip

    meter = Meter(relay)
    undo_offboarding(run, actor=actor, confirmation=UID)
    undo = meter.stop(n)
    undone = locked_on_servers() == (0, 0)
    show(f"undo, {WORKERS} workers", undo)
    print(f"  all unlocked: {undone}")

    meter = Meter(relay)
    serial_run = offboard(person, actor, 1)
    serial = meter.stop(n)
    serial_check = check_run(serial_run, n)
    show("sequential: the same offboarding, 1 worker", serial)
    print(f"  run {serial_check['run_state']}, {serial_check['verified']}/{n} verified; "
          f"servers say {serial_check['locked_on_servers']} accounts locked")  # fmt: skip
    undo_offboarding(serial_run, actor=actor, confirmation=UID)
    serial_undone = locked_on_servers() == (0, 0)
    return {"job": job, "job_check": job_check, "undo": undo, "undone": undone,
            "serial": serial, "serial_check": serial_check,
            "serial_undone": serial_undone}  # fmt: skip


def time_lock_account(person, actor, n: int, relay) -> dict:
    """users.dbops.lock_account on each account one after another (then unlocked)."""
    from users import dbops
    from users.models import DatabaseAccount

    ordered = list(DatabaseAccount.objects.filter(person=person)
                   .select_related("cluster", "node").order_by("name"))  # fmt: skip
    meter = Meter(relay)
    changed = sum(dbops.lock_account(a, actor=actor).changed for a in ordered)
    lock_account = meter.stop(n)
    show(f"dbops.lock_account one after another ({changed} changed)", lock_account)
    for a in ordered:
        dbops.unlock_account(a, actor=actor)
    return lock_account


def summarize(phases: dict, n: int, delay_ms: float, lock_account: dict | None) -> dict:
    """The speedup and the bounds this machine's CPUs put on it, printed; the figures."""
    from console import audit_chain
    from users.actions.offboarding import WORKERS

    job, serial = phases["job"], phases["serial"]
    chain = audit_chain.verify()
    speedup = serial["seconds"] / job["seconds"]
    bound = serial["seconds"] / job["cpu_bound_s"] if job["cpu_bound_s"] else None
    # The sequential run's parts wait for each other (console, server, metadata database in
    # turn): on an idle machine it takes about the sum of their CPU, and the offboarding at
    # least its own CPU bound, whatever the pool's size.
    serial_cpu = round(sum(serial["cpu_s"].values()), 2)
    idle_bound = serial_cpu / job["cpu_bound_s"] if job["cpu_bound_s"] else None
    idle = "" if delay_ms else (
        f"; idle, with nothing else running, the sequential run takes about its CPU sum, "
        f"{serial_cpu} s: at most {idle_bound:.1f}x")  # fmt: skip
    print(f"speedup: {speedup:.1f}x (sequential {serial['seconds']:.2f} s / offboarding "
          f"{job['seconds']:.2f} s); at most {bound:.1f}x on this machine's CPUs from the "
          f"offboarding's CPU ({job['cpu_bound_s']} s){idle}; audit chain: "
          f"{chain.checked} entries, intact={chain.intact}")  # fmt: skip
    if delay_ms:
        waits = serial["seconds"] / n / (2 * delay_ms / 1000)
        print(f"  the sequential run took {waits:.1f} round trips' time per account for "
              f"{serial['per_account']['round_trips']} round trips counted by the relay "
              f"(the rest: CPU and waiting for it)")  # fmt: skip
    return {
        "offboard_s": job["seconds"],
        "offboard": {**job, **phases["job_check"]},
        "undo_s": phases["undo"]["seconds"],
        "undo": phases["undo"],
        "undone": phases["undone"] and phases["serial_undone"],
        "sequential_s": serial["seconds"],
        "sequential": {**serial, **phases["serial_check"]},
        "lock_account_sequential": lock_account,
        "speedup": round(speedup, 1),
        "speedup_cpu_bound": round(bound, 1) if bound else None,
        "sequential_cpu_sum_s": serial_cpu,
        "speedup_bound_idle": round(idle_bound, 1) if idle_bound else None,
        "audit_chain_intact": chain.intact,
        "workers": WORKERS,
    }


def verdict(figures: dict, delay_ms: float, dropped: int) -> dict:
    """The JSON line's content: the figures, the targets and whether they were met."""
    ok = (
        not delay_ms  # the targets are the direct run's; --delay-ms is for information
        and figures["offboard_s"] <= TARGET_S
        and figures["speedup"] >= TARGET_SPEEDUP
        and figures["offboard"]["ok"]
        and figures["offboard"]["verified"] == SERVERS
        and figures["sequential"]["ok"]
        and figures["undone"]
        and figures["audit_chain_intact"]
    )
    return {
        "name": "offboard",
        "servers": SERVERS,
        "delay_ms_each_way": delay_ms,
        **figures,
        "accounts_dropped": dropped,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
        "target_offboard_s": TARGET_S,
        "target_speedup": TARGET_SPEEDUP,
        "ok": ok,
    }


def main() -> int:
    args = parse_args()
    relay, via = start_relay(args.delay_ms) if args.delay_ms else (None, None)
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.db import connections

    try:
        actor, person, n = prepare(via, args.delay_ms)
        phases = measure(person, actor, n, relay)
        lock_account = time_lock_account(person, actor, n, relay) if args.lock_account else None
        figures = summarize(phases, n, args.delay_ms, lock_account)
    finally:
        dropped = drop_accounts()
        print(f"cleanup: {dropped} accounts dropped from db1 and my1")
        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)
        if relay is not None:
            relay.terminate()
            relay.wait(timeout=10)

    result = verdict(figures, args.delay_ms, dropped)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
