"""The monitoring collector: one cycle polls every node in parallel and stores what it saw.

`collect_cycle(nodes)` runs each node's poll (clusters.collect_poll.poll_node: PostgreSQL,
pgpool-II, MariaDB/MySQL, disk, the server log, each through the executor only, every remote
call audited there) in a bounded thread pool (CLUSTERS_COLLECT_WORKERS). Bare hosts (service
"none") are not polled. A node's first check failing makes it `down`; disk and log failures are
recorded (`details["disk_error"]`, `log_error`) without that.

Deadlines: each node has `timeout_per_node` seconds from the moment a worker starts it (passed
to the executor as the statement/command timeout, and enforced by the cycle: a node still
running after it plus a grace is recorded down with "no answer", and the cycle stops waiting
for it; its thread finishes on its own, its audit entry is completed by the executor). So a
hanging node delays the others only by holding one worker.

The cycle then writes, from this thread (clusters.collect_store.store_cycle): Sample rows
(bulk), and one NodeStatus per node. A standby's replication fields come from its primary's
answer in the same cycle. Retention (rollup_and_prune) is in clusters.collect_store too.
"""

import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from clusters.collect_poll import NodeResult, poll_node
from clusters.collect_store import store_cycle
from clusters.models import Node, NodeStatus

_GRACE = 2.0  # seconds past a node's deadline before the cycle gives up on it
_SLOW_FIRST = {Node.Service.PGPOOL: 0, Node.Service.MARIADB: 1, Node.Service.POSTGRESQL: 2}


@dataclass
class CycleResult:
    """One cycle: per node results by node id, and the nodes given up on at their deadline."""

    started: datetime
    duration_s: float
    results: dict[int, NodeResult]
    timed_out: list[str]

    @property
    def up(self) -> list[str]:
        return sorted(r.name for r in self.results.values() if r.state == NodeStatus.State.UP)

    @property
    def down(self) -> list[str]:
        return sorted(r.name for r in self.results.values() if r.state != NodeStatus.State.UP)

    def results_by_name(self) -> dict[str, NodeResult]:
        return {r.name: r for r in self.results.values()}

    def summary(self) -> dict:
        return {
            "nodes": len(self.results),
            "up": len(self.up),
            "down": self.down,
            "timed_out": self.timed_out,
            "duration_s": round(self.duration_s, 3),
        }


def collect_cycle(
    nodes, *, job=None, timeout_per_node: float = 10, disk: bool | None = None, logs_: bool = True
) -> CycleResult:
    """Poll `nodes` (Node rows or ids) in parallel, store Samples and NodeStatus, return what
    was seen. Guarantees: returns within about `timeout_per_node` + 2 s of the last node's
    start, whatever the nodes do; every node given is recorded (up, or down with the reason).
    `disk` forces (True) or skips (False) the disk check; by default it runs every
    CLUSTERS_COLLECT_DISK_EVERY-th cycle of each node."""
    ids = [n.pk if isinstance(n, Node) else n for n in nodes]
    rows = list(
        Node.objects.filter(pk__in=ids)
        .exclude(service=Node.Service.NONE)
        .select_related("ssh_credential", "db_credential", "cluster")
    )
    rows.sort(key=lambda n: _SLOW_FIRST.get(n.service, 9))  # the slowest polls start first
    statuses = {s.node_id: s for s in NodeStatus.objects.filter(node__in=rows)}
    started = timezone.now()
    t0 = time.monotonic()
    results, timed_out = _run_pool(rows, statuses, job, timeout_per_node, disk, logs_)
    store_cycle(rows, statuses, results, started)
    return CycleResult(started, time.monotonic() - t0, results, timed_out)


class _Pool:
    """Worker threads taking nodes from a queue; each keeps one console connection (for the
    executor's audit entries) for all its nodes and closes it when the queue is empty."""

    def __init__(self, rows, statuses, poll_kwargs: dict):
        self.todo: queue.SimpleQueue = queue.SimpleQueue()
        for node in rows:
            self.todo.put(node)
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.begun: dict[int, float] = {}
        self.statuses, self.poll_kwargs = statuses, poll_kwargs

    def start_worker(self) -> None:
        threading.Thread(target=self._work, name="collect", daemon=True).start()

    def _work(self) -> None:
        try:
            while True:
                try:
                    node = self.todo.get_nowait()
                except queue.Empty:
                    return
                self.begun[node.pk] = time.monotonic()
                try:
                    seen = poll_node(node, self.statuses.get(node.pk), **self.poll_kwargs)
                except Exception as e:  # a bug in a poll must not lose the other nodes
                    seen = NodeResult(node.pk, node.name, error=f"collector error: {e!r}")
                self.done.put(seen)
        finally:
            connection.close()


def _run_pool(rows, statuses, job, timeout, disk, with_logs):
    """Poll `rows` with CLUSTERS_COLLECT_WORKERS threads; give up on a node `timeout` + grace
    after its start (recorded down, its thread left to finish alone, a new worker started in
    its place so the others keep their pace)."""
    pool = _Pool(rows, statuses, {"job": job, "timeout": timeout, "disk": disk,
                                  "with_logs": with_logs})  # fmt: skip
    for _ in range(max(1, min(settings.CLUSTERS_COLLECT_WORKERS, len(rows)))):
        pool.start_worker()
    results: dict[int, NodeResult] = {}
    timed_out: list[str] = []
    checked = time.monotonic()
    while len(results) < len(rows):
        try:
            seen = pool.done.get(timeout=0.2)
            results.setdefault(seen.node_id, seen)  # a node given up on stays given up on
        except queue.Empty:
            pass
        now = time.monotonic()
        if now - checked < 0.2:
            continue
        checked = now
        for node in rows:
            started = pool.begun.get(node.pk)
            if node.pk not in results and started and now - started > timeout + _GRACE:
                timed_out.append(node.name)
                error = f"no answer within {timeout:g} s"
                results[node.pk] = NodeResult(node.pk, node.name, error=error)
                pool.start_worker()
    return results, timed_out
