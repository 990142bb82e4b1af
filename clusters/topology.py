"""The cluster page's topology diagram: box and arrow coordinates for an inline SVG.

Pure (no queries): pgpool-II nodes in a row at the top with an arrow to each backend they
route to; below them the primary then the standbys; under the database row, one arc from the
primary to each standby labelled with its sync state and replay lag as the primary reports it
(pg_stat_replication), drawn dashed and red when the primary does not list that standby.
The template (clusters/partials/topology.html) only draws what this returns.
"""

from dataclasses import dataclass, field

from clusters.templatetags.dashboard_extras import bytes_human

BOX_W, BOX_H, GAP_X, MARGIN = 190, 62, 56, 12
ROW_GAP = 70


@dataclass
class Box:
    x: int
    y: int
    node: object
    title: str
    subtitle: str
    state: str  # up, down, unknown
    w: int = BOX_W
    h: int = BOX_H

    @property
    def cx(self) -> int:
        return self.x + self.w // 2


@dataclass
class Edge:
    path: str
    css: str  # "route", "route-down", "repl-sync", "repl-async", "repl-missing"
    label: str = ""
    lx: int = 0
    ly: int = 0
    title: str = ""


@dataclass
class Topology:
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def _row_x(count: int, width: int) -> list[int]:
    span = count * BOX_W + (count - 1) * GAP_X
    left = (width - span) // 2
    return [left + i * (BOX_W + GAP_X) for i in range(count)]


def _state(view) -> str:
    return view.status.state


def _db_subtitle(view, is_primary: bool) -> str:
    s = view.status
    if s.state != "up":
        return f"{view.node.role} · {s.state}"
    if is_primary:
        return "primary · read-write"
    if view.node.service == "mariadb":
        return "replica · read-only"
    return f"standby · {s.replication_state or 'not streaming'}"


def _lag_label(row: dict | None) -> tuple[str, str, str]:
    """(label, css, title) of a replication arc."""
    if row is None:
        return "not streaming", "repl-missing", "the primary does not list this standby"
    sync = row.get("sync_state") or "?"
    lag = row.get("replay_lag_bytes")
    seconds = row.get("replay_lag_s")
    label = f"{sync} · {bytes_human(lag)}"
    if seconds is not None:
        label += f" · {seconds * 1000:.0f} ms" if seconds < 1 else f" · {seconds:.1f} s"
    css = "repl-sync" if sync in ("sync", "quorum") else "repl-async"
    title = f"{row.get('state')}, {sync}; replay lag {bytes_human(lag)}"
    return label, css, title


def layout(primary, standbys: list, pools: list, standby_rows: list[dict]) -> Topology:
    """Coordinates for `primary` (a NodeView or None), its `standbys` and `pools` (NodeViews),
    with the primary's pg_stat_replication rows (`standby_rows`) for the arcs."""
    dbs = ([primary] if primary else []) + standbys
    count = max(len(dbs), len(pools), 1)
    width = max(2 * MARGIN + count * BOX_W + (count - 1) * GAP_X, 420)
    topo = Topology(width=width, height=0)
    y_db = MARGIN + (BOX_H + ROW_GAP if pools else 0)
    db_boxes = []
    for view, x in zip(dbs, _row_x(len(dbs), width), strict=True):
        is_primary = view is primary
        subtitle = _db_subtitle(view, is_primary)
        db_boxes.append(Box(x, y_db, view.node, view.node.name, subtitle, _state(view)))
    for view, x in zip(pools, _row_x(len(pools), width), strict=True):
        backends = view.status.details.get("backends", [])
        up = sum(1 for b in backends if b.get("status") in ("up", "waiting"))
        subtitle = (
            f"pgpool-II · {up}/{len(backends)} up"
            if view.status.state == "up"
            else (f"pgpool-II · {view.status.state}")
        )
        box = Box(x, MARGIN, view.node, view.node.name, subtitle, _state(view))
        topo.boxes.append(box)
        _route_edges(topo, box, view, db_boxes)
    topo.boxes += db_boxes
    depth = _replication_arcs(topo, db_boxes, standby_rows) if primary else 0
    topo.height = y_db + BOX_H + depth + MARGIN + 8
    return topo


def _route_edges(topo: Topology, pool_box: Box, view, db_boxes: list[Box]) -> None:
    """An arrow from a pgpool-II node to each database node it lists as a backend."""
    for b in view.status.details.get("backends", []):
        target = next(
            (d for d in db_boxes if d.node.address == b.get("hostname")
             and str(d.node.db_port or 5432) == str(b.get("port"))), None,
        )  # fmt: skip
        if target is None:
            continue
        up = b.get("status") in ("up", "waiting") and view.status.state == "up"
        x1, y1 = pool_box.cx, pool_box.y + pool_box.h
        x2, y2 = target.cx, target.y - 6
        topo.edges.append(Edge(
            path=f"M{x1},{y1} L{x2},{y2}", css="route" if up else "route-down",
            title=f"{pool_box.title} → {target.title}: backend {b.get('node_id')} "
                  f"{b.get('status')}, {b.get('role')}, weight {b.get('lb_weight')}",
        ))  # fmt: skip


def _replication_arcs(topo: Topology, db_boxes: list[Box], rows: list[dict]) -> int:
    primary, standbys = db_boxes[0], db_boxes[1:]
    depth = 0
    for i, box in enumerate(standbys):
        row = next((r for r in rows if r.get("application_name") == box.node.name), None)
        if row is None:
            row = next((r for r in rows if r.get("client_addr") == box.node.address), None)
        label, css, title = _lag_label(row)
        if box.node.service == "mariadb":
            label, css, title = "replica", "repl-async", "MariaDB replication"
        d = 44 + 34 * i
        x1, x2, y = primary.cx, box.cx - 8, primary.y + primary.h
        path = f"M{x1},{y} C{x1},{y + d} {x2},{y + d} {x2},{y + 6}"
        lx, ly = (x1 + x2) // 2, y + int(0.75 * d) - 4
        topo.edges.append(Edge(path, css, label, lx, ly, title))
        depth = d
    return depth
