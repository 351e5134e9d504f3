"""A campaign's node-link graph for the dashboard, laid out here and drawn as inline SVG.

`campaign_graph` gathers what one viewer may see around a campaign: the objects linked to it
by visible relationships, the indicators its sightings are of, the members where they were
sighted or that reported its incidents, and the relationships among those objects (the
correlation's `related-to` links carry the shared values as `x_shieldwall_evidence`). Every
read passes the viewer's `Access`; an object the viewer cannot read is not drawn, nor is its
id: an edge whose other end is hidden is left out with it.

`layout` is pure: concentric rings by object kind, the campaign in the centre, each ring wide
enough that no two nodes overlap, the same input always giving the same picture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from shieldwall.stix.markings import TLP
from shieldwall.store import Access, Query, Store, StoredVersion
from shieldwall.web.picture import Names, read

EVIDENCE = "x_shieldwall_evidence"
NODE_RADIUS = 20.0
GAP = 84.0  # between node edges on a ring and between rings: room for a label
MARGIN = 90.0
MAX_NODES = 60  # beyond this the graph stops being readable; the table lists everything
LABEL_CHARS = 24
MEMBER = "member"

# Ring of each kind, from the centre out (ring 0 holds the centre campaign alone); kinds not
# named, other campaigns among them, go with ring 2.
RINGS: Mapping[str, int] = {
    "incident": 1, "sighting": 1, "indicator": 2, "intrusion-set": 2,
    "threat-actor": 2, "malware": 2, "attack-pattern": 2, MEMBER: 3,
}


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    label: str
    href: str
    tlp: TLP | None = None
    x: float = 0.0
    y: float = 0.0
    centre: bool = False

    @property
    def r(self) -> float:
        """Drawn radius: the campaign a little larger than what surrounds it."""
        return NODE_RADIUS + 6 if self.centre else NODE_RADIUS

    @property
    def short(self) -> str:
        return self.label if len(self.label) <= LABEL_CHARS else self.label[:LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    tlp: TLP | None = None
    evidence: tuple[str, ...] = ()


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    size: float
    left_out: int = 0  # visible objects not drawn past MAX_NODES
    by_id: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {n.id: n for n in self.nodes}

    def lines(self) -> list[Line]:
        """Each edge from rim to rim (the arrow head stops at the target's border). Links
        to the campaign are straight; links between other objects bow away from the centre,
        so they do not run through the campaign."""
        c = self.size / 2
        out = []
        for e in self.edges:
            a, b = self.by_id[e.source], self.by_id[e.target]
            mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
            if a.centre or b.centre:
                qx, qy = mx, my
            else:
                vx, vy = mx - c, my - c
                if math.hypot(vx, vy) < 1:  # opposite each other: bow sideways
                    vx, vy = -(b.y - a.y), b.x - a.x
                bow = 0.35 * math.hypot(b.x - a.x, b.y - a.y)
                n = math.hypot(vx, vy) or 1.0
                qx, qy = mx + vx / n * bow, my + vy / n * bow
            x1, y1 = _toward(a, qx, qy, b)
            x2, y2 = _toward(b, qx, qy, a)
            out.append(Line(e, a, b, x1, y1, x2, y2, round(qx, 2), round(qy, 2)))
        return out

    def kinds(self) -> list[str]:
        return sorted({n.kind for n in self.nodes}, key=lambda k: (RINGS.get(k, 2), k))


@dataclass(frozen=True)
class Line:
    edge: Edge
    source: Node
    target: Node
    x1: float
    y1: float
    x2: float
    y2: float
    qx: float  # control point of the quadratic curve (the midpoint for a straight line)
    qy: float

    @property
    def d(self) -> str:
        return f"M{self.x1},{self.y1} Q{self.qx},{self.qy} {self.x2},{self.y2}"

    @property
    def mid(self) -> tuple[float, float]:
        return (round(0.25 * self.x1 + 0.5 * self.qx + 0.25 * self.x2, 2),
                round(0.25 * self.y1 + 0.5 * self.qy + 0.25 * self.y2, 2))

    @property
    def text(self) -> str:
        """The edge's label: its type, or the first shared value for correlation links."""
        text = self.edge.evidence[0] if self.edge.evidence else self.edge.label
        return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def _toward(n: Node, qx: float, qy: float, other: Node) -> tuple[float, float]:
    """The point on `n`'s rim (plus a little air) facing the control point."""
    dx, dy = qx - n.x, qy - n.y
    if math.hypot(dx, dy) < 1:
        dx, dy = other.x - n.x, other.y - n.y
    d = math.hypot(dx, dy) or 1.0
    pad = n.r + 3
    return round(n.x + dx / d * pad, 2), round(n.y + dy / d * pad, 2)


def layout(nodes: Sequence[Node], radius: float = NODE_RADIUS, gap: float = GAP
           ) -> tuple[list[Node], float]:
    """Place `nodes` on concentric rings by kind around the one marked `centre`; returns them
    placed and the side of the square that holds them.

    Within a ring nodes are ordered by (kind, label, id) and spread evenly; the ring's radius
    is at least one step beyond the previous ring and large enough that neighbouring centres
    are `2 radius + gap` apart, so no two nodes overlap, however many there are.
    """
    rings: dict[int, list[Node]] = {}
    for n in nodes:
        rings.setdefault(0 if n.centre else RINGS.get(n.kind, 2), []).append(n)
    step = 2 * (radius + 6) + gap  # room for the larger campaign node
    placed: list[Node] = []
    r_prev = 0.0
    radii: list[float] = []
    for ring in sorted(rings):
        members = sorted(rings[ring], key=lambda n: (n.kind, n.label, n.id))
        count = len(members)
        if ring == 0 and count == 1:
            r = 0.0
        else:
            r = r_prev + step if radii else step
            if count > 1:
                r = max(r, step / (2 * math.sin(math.pi / count)))
        radii.append(r)
        r_prev = r
        offset = -math.pi / 2 + (ring % 2) * math.pi / max(count, 1)
        for i, n in enumerate(members):
            a = offset + 2 * math.pi * i / count
            placed.append(Node(n.id, n.kind, n.label, n.href, n.tlp,
                               round(r * math.cos(a), 2), round(r * math.sin(a), 2), n.centre))
    half = float(math.ceil((radii[-1] if radii else 0.0) + radius + 6 + MARGIN))
    side = 2 * half
    return [Node(n.id, n.kind, n.label, n.href, n.tlp, round(n.x + half, 2),
                 round(n.y + half, 2), n.centre) for n in placed], round(side, 2)


def _href(prefix: str, stix_id: str) -> str:
    return f"{prefix}/objects/{quote(stix_id, safe='')}"


def _evidence(rel: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for e in rel.get(EVIDENCE) or []:
        if isinstance(e, Mapping):
            out.append(f"{e.get('kind', '')} {e.get('value', '')}".strip())
        else:
            out.append(str(e))
    return tuple(out)


def campaign_graph(store: Store, access: Access, names: Names, campaign: StoredVersion,
                   related: Sequence[Mapping[str, Any]], prefix: str) -> Graph:
    """The graph around `campaign` as the holder of `access` may see it.

    `related` is `picture.related(store, access, campaign.id)`: the visible relationships
    touching the campaign, each with its other end when visible (None when not).
    """
    nodes: dict[str, Node] = {campaign.id: Node(
        campaign.id, "campaign", campaign.name or campaign.id, _href(prefix, campaign.id),
        campaign.tlp, centre=True)}
    rows: dict[str, StoredVersion] = {}
    edges: dict[tuple[str, str, str], Edge] = {}
    dropped: set[str] = set()

    def add_row(row: StoredVersion) -> None:
        if row.id in nodes:
            return
        if len(nodes) >= MAX_NODES:
            dropped.add(row.id)
            return
        nodes[row.id] = Node(row.id, row.type, row.name or _unnamed(row, names),
                             _href(prefix, row.id), row.tlp)
        rows[row.id] = row

    def add_member(ref: str) -> None:
        if ref in nodes:
            return
        if len(nodes) >= MAX_NODES:
            dropped.add(ref)
            return
        name = names.of(ref)
        href = (f"{prefix}/sightings?member={quote(name, safe='')}" if name != ref
                else _href(prefix, ref))
        nodes[ref] = Node(ref, MEMBER, name, href)

    def add_edge(src: str, dst: str, label: str, tlp: TLP | None = None,
                 evidence: tuple[str, ...] = ()) -> None:
        if src in nodes and dst in nodes and src != dst:
            edges.setdefault((src, dst, label), Edge(src, dst, label, tlp, evidence))

    for r in related:
        other = r.get("other")
        if other is None:  # hidden from this viewer: not drawn, not named
            continue
        add_row(other)
        rel = r["rel"]
        src, dst = (campaign.id, other.id) if r["outgoing"] else (other.id, campaign.id)
        add_edge(src, dst, str(rel.get("relationship_type", "related-to")), r.get("tlp"),
                 _evidence(rel))
    # One hop further: what each linked sighting is of, and the members involved.
    for row in list(rows.values()):
        obj = read(row)
        if row.type == "sighting":
            ref = obj.get("sighting_of_ref")
            if ref and ref not in nodes:
                found = store.get(ref, access)
                if found is not None:
                    add_row(found)
            add_edge(row.id, str(ref), "sighting-of")
            for where in obj.get("where_sighted_refs") or []:
                add_member(str(where))
                add_edge(row.id, str(where), "sighted-at")
        elif row.type == "incident" and row.created_by_ref:
            add_member(row.created_by_ref)
            add_edge(row.created_by_ref, row.id, "reported")
    # Relationships among the drawn objects (correlation evidence, attribution, indicates).
    ids = set(nodes)
    for rel_row in store.iter_query(Query(types=["relationship"], access=access,
                                          include_revoked=False)):
        rel = read(rel_row)
        src, dst = rel.get("source_ref"), rel.get("target_ref")
        if campaign.id in (src, dst) or src not in ids or dst not in ids:
            continue
        add_edge(str(src), str(dst), str(rel.get("relationship_type", "related-to")),
                 rel_row.tlp, _evidence(rel))
    placed, side = layout(list(nodes.values()))
    return Graph(placed, list(edges.values()), side, left_out=len(dropped))


def _unnamed(row: StoredVersion, names: Names) -> str:
    if row.type == "sighting":
        obj = read(row)
        where = (obj.get("where_sighted_refs") or [None])[0]
        return f"sighting at {names.of(where)}"
    return row.type

