"""Benchmark: audit appends through the executor path, and verifying 1,000,000 entries.

Runs on the lab's metadata PostgreSQL (DATABASE_URL, as `make bench` sets it) in a throwaway
database of its own. Prints its figures and ends with one JSON line.
Targets: p99 append <= 2 ms; verify 1,000,000 entries <= 10 s.
"""

import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402

APPENDS = 5000
ENTRIES = 1_000_000
TARGET_P99_MS = 2.0
TARGET_VERIFY_S = 10.0
BENCH_DB = "bench_audit"


def fill_chain(n: int) -> None:
    """Write n valid chained entries fast, with COPY, continuing from the current head."""
    from django.db import connection
    from django.utils import timezone

    from console import audit_chain
    from console.models import AuditEntry

    prev = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
    prev = prev or audit_chain.GENESIS_HASH
    start = timezone.now() - timedelta(days=365)
    columns = ("prev_hash", "hash", *audit_chain.HASHED_FIELDS)
    with connection.cursor() as cursor:
        sql = f"COPY console_auditentry ({', '.join(columns)}) FROM STDIN"
        with cursor.connection.cursor().copy(sql) as copy:
            for i in range(n):
                values = (
                    start + timedelta(milliseconds=i * 30),
                    None,
                    f"user{i % 50}",
                    "job",
                    "remote.command",
                    f"cluster:{i % 200}",
                    f"db{i % 8}",
                    f"pg_rman backup -b full -B /mnt/catalog/{i % 200}",
                    "succeeded",
                    0,
                    "INFO: backup complete",
                    "",
                    1200 + i % 800,
                    "",
                    i,
                    None,
                )
                digest = audit_chain.digest(prev, values)
                copy.write_row((prev, digest, *values))
                prev = digest


def measure_appends(n: int) -> list[float]:
    """Append as the executor does: a started entry and its outcome, outside any transaction."""
    from console import audit

    times = []
    for i in range(n // 2):
        t0 = time.perf_counter()
        intent = audit.append(
            audit.REMOTE_COMMAND,
            source="job",
            status="started",
            node="db1",
            command=f"pg_ctl status #{i}",
        )
        t1 = time.perf_counter()
        audit.append(
            audit.REMOTE_COMMAND,
            source="job",
            status="succeeded",
            node="db1",
            command=f"pg_ctl status #{i}",
            exit_code=0,
            output="server is running",
            duration_ms=3,
            intent_id=intent.pk,
        )
        t2 = time.perf_counter()
        times += [(t1 - t0) * 1000, (t2 - t1) * 1000]
    return times


def main() -> int:
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.core.management import call_command

    from console import audit, audit_chain

    try:
        call_command("migrate", verbosity=0)
        times = sorted(measure_appends(APPENDS))
        p50 = statistics.median(times)
        p99 = times[int(len(times) * 0.99) - 1]
        print(f"append: {len(times)} entries, p50 {p50:.3f} ms, p99 {p99:.3f} ms")

        t0 = time.perf_counter()
        fill_chain(ENTRIES - audit.AuditEntry.objects.count())
        print(f"filled the chain to {ENTRIES} entries in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        result = audit_chain.verify()
        verify_s = time.perf_counter() - t0
        print(f"verify: {result.checked} entries in {verify_s:.2f} s, intact={result.intact}")
    finally:
        from django.db import connections

        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)

    ok = result.intact and result.checked >= ENTRIES and p99 <= TARGET_P99_MS
    ok = ok and verify_s <= TARGET_VERIFY_S
    print(
        json.dumps(
            {
                "name": "audit",
                "append_p50_ms": round(p50, 3),
                "append_p99_ms": round(p99, 3),
                "target_append_p99_ms": TARGET_P99_MS,
                "verify_entries": result.checked,
                "verify_s": round(verify_s, 2),
                "target_verify_s": TARGET_VERIFY_S,
                "ok": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
