"""The measurement of bench/offboard.py: what a phase cost (`Meter`), the counters it reads (the
console database's ORM statements, the audit chain's writes, the relay's round trips, CPU from
/proc) and the line that shows it. Apart from the fleet it measures (bench/_offboard_fleet.py)
and the run (bench/offboard.py).
"""

import json
import os
import signal
import time
from pathlib import Path

from _offboard_fleet import server_connections
from collect import cpu_since, lab_cpu


def relay_counts(relay) -> dict:
    """The relay's counts so far (connections, chunks up and down): see bench/_delay.py."""
    relay.send_signal(signal.SIGUSR1)
    return json.loads(relay.stdout.readline())


def process_cpu(pid: int) -> float:
    """CPU seconds a process of this machine has used (the relay)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(map(int, stat[11:13])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time, and per account what a phase cost: CPU seconds of the console process (all its
    threads), the metadata database, the lab's servers and the relay; the connections the
    servers accepted; the ORM statements on the console database (every connection's, counted
    by an execute wrapper), the audit entries and the audit chain's writes."""

    statements = 0  # ORM statements on the console database, counted by count_statements
    audit_writes = 0  # audit chain writes (a head read and one INSERT each), counted by count_audit

    def __init__(self, relay=None):
        from console.models import AuditEntry

        self.relay = relay
        self.audit0 = AuditEntry.objects.count()
        self.connections0 = server_connections()
        self.lab0, self.statements0, self.writes0 = lab_cpu(), Meter.statements, Meter.audit_writes
        self.relay0 = process_cpu(relay.pid) if relay else 0.0
        self.trips0 = relay_counts(relay) if relay else None
        self.cpu0, self.t0 = time.process_time(), time.perf_counter()

    def stop(self, accounts: int) -> dict:
        from console.models import AuditEntry

        seconds = time.perf_counter() - self.t0
        console = time.process_time() - self.cpu0
        used = cpu_since(self.lab0)
        statements = Meter.statements - self.statements0
        writes = Meter.audit_writes - self.writes0
        relay = process_cpu(self.relay.pid) - self.relay0 if self.relay else 0.0
        trips = relay_counts(self.relay) if self.relay else None
        servers = sum(used.get(k, 0.0) for k in ("db1", "db2", "my1"))
        cpu = {"console": round(console, 2), "metadata_db": used.get("meta", 0.0),
               "db1": used.get("db1", 0.0), "db2": used.get("db2", 0.0),
               "my1": used.get("my1", 0.0), "relay": round(relay, 2)}  # fmt: skip
        total = console + servers + used.get("meta", 0.0) + relay
        return {
            "seconds": round(seconds, 3),
            "cpu_s": cpu,
            "per_account": {
                "console_cpu_ms": round(console * 1000 / accounts, 2),
                "servers_cpu_ms": round(servers * 1000 / accounts, 2),
                "metadata_db_cpu_ms": round(used.get("meta", 0.0) * 1000 / accounts, 2),
                "connections": round((server_connections() - self.connections0) / accounts, 2),
                "orm_statements": round(statements / accounts, 2),
                "audit_writes": round(writes / accounts, 2),
                "audit_entries": round((AuditEntry.objects.count() - self.audit0) / accounts, 2),
                # through the relay: requests sent toward the servers (a round trip each) and
                # connections, per account
                **(
                    {
                        "round_trips": round((trips["up"] - self.trips0["up"]) / accounts, 2),
                        "relayed_connections": round(
                            (trips["connections"] - self.trips0["connections"]) / accounts, 2
                        ),
                    }
                    if trips
                    else {}
                ),  # fmt: skip
            },
            # On this machine's CPUs: the console's Python runs on one CPU at a time (the GIL),
            # and everything together on all of them.
            "cpu_bound_s": round(max(console, total / (os.cpu_count() or 1)), 2),
            "load": round(os.getloadavg()[0], 1),
        }


def count_audit() -> None:
    """Count the audit chain's writes: the executor's entries of concurrent threads are written
    together (console.audit_writer's group commit), each write a head read and one INSERT."""
    from console import audit_writer

    insert = audit_writer._insert_after_head

    def counted(entries):
        Meter.audit_writes += 1
        return insert(entries)

    audit_writer._insert_after_head = counted


def count_statements(sender, connection, **kwargs) -> None:
    """connection_created receiver: count every statement of the new console connection."""

    def count(execute, sql, params, many, context):
        Meter.statements += 1  # += on an int under the GIL: close enough for a count
        return execute(sql, params, many, context)

    connection.execute_wrappers.append(count)


def show(name: str, m: dict) -> None:
    a = m["per_account"]
    print(f"{name}: {m['seconds']:.2f} s, load {m['load']}; CPU s {m['cpu_s']}; per account: "
          f"console {a['console_cpu_ms']} ms, servers {a['servers_cpu_ms']} ms, metadata DB "
          f"{a['metadata_db_cpu_ms']} ms CPU, {a['connections']} server connection(s), "
          f"{a['orm_statements']} ORM statement(s), {a['audit_entries']} audit entries in "
          f"{a['audit_writes']} write(s)"
          + (f", {a['round_trips']} round trip(s) over {a['relayed_connections']} relayed "
             f"connection(s)" if "round_trips" in a else "")
          + f"; CPU bound here: >= {m['cpu_bound_s']} s"
          )  # fmt: skip
