"""The campaign page's node-link graph: its layout, and that it draws only what the viewer
may read."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

from fastapi.testclient import TestClient

from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, now_us
from shieldwall.store import Provenance, Store
from shieldwall.web.graph import NODE_RADIUS, Node, layout
from tests.web.seed import SECRET_CAMPAIGN, SECRET_NAME, SECRET_VALUE, Seeded, _id, sighting
from tests.web.test_auth_policy import sign_in

D = "/dashboard"


def svg_of(html: str) -> str:
    m = re.search(r'<svg id="campaign-graph".*?</svg>', html, re.S)
    assert m, "no campaign graph on the page"
    return m.group(0)


def graph_section(html: str) -> str:
    m = re.search(r'<section aria-labelledby="graph-h".*?</section>', html, re.S)
    assert m, "no campaign graph section on the page"
    return m.group(0)


def rel(rtype: str, src: str, dst: str, tlp: TLP, **extra: Any) -> dict[str, Any]:
    ts = format_ts(now_us())
    return {"type": "relationship", "spec_version": "2.1", "id": _id("relationship"),
            "created": ts, "modified": ts, "relationship_type": rtype, "source_ref": src,
            "target_ref": dst, "object_marking_refs": [tlp_marking_ref(tlp)], **extra}


def link_amber_to_green_campaign(store: Store, s: Seeded) -> dict[str, Any]:
    """GREEN links from the GREEN campaign to AMBER objects, and a GREEN sighting of the
    AMBER indicator: a partner reads the links but must not see what is at their far end."""
    amber = store.get(s.amber_indicator)
    assert amber is not None
    green_sighting = sighting(amber.obj(), "latvia", TLP.GREEN, now_us(), count=2)
    objs = [
        green_sighting,
        rel("indicates", s.amber_indicator, s.green_campaign, TLP.GREEN),
        rel("related-to", s.amber_campaign, s.green_campaign, TLP.GREEN),
        rel("related-to", s.amber_sighting, s.green_campaign, TLP.AMBER),
        rel("related-to", green_sighting["id"], s.green_campaign, TLP.GREEN),
        rel("related-to", green_sighting["id"], s.incident, TLP.GREEN,
            x_shieldwall_evidence=[{"kind": "ipv4-addr", "value": "198.51.100.7"}]),
    ]
    result = store.put_many(objs, Provenance("latvia", "taxii"))
    assert result.stored == len(objs), result.rejected
    return green_sighting


def test_ally_sees_the_graph_of_linked_objects(client: TestClient,
                                               seeded: tuple[Store, Seeded]) -> None:
    store, s = seeded
    extra = link_amber_to_green_campaign(store, s)
    sign_in(client, "ana", s.passwords["ana"])
    html = client.get(f"{D}/objects/{s.green_campaign}").text
    svg = svg_of(html)
    nodes = set(re.findall(r'data-node="([^"]+)"', svg))
    assert {s.green_campaign, s.green_indicator, s.incident, s.amber_indicator,
            s.amber_campaign, s.amber_sighting, extra["id"]} <= nodes
    # Members where the sightings were made, as member nodes linking to their sightings.
    assert f'href="{D}/sightings?member=latvia"' in svg
    assert f'href="{D}/sightings?member=estonia"' in svg
    assert f'href="{D}/objects/{s.incident}"' in svg
    assert "<title>" in svg and svg.count("<path d=") >= 6
    assert "indicates" in svg and "attributed-to" in svg and "sighting-of" in svg
    # The correlation link between sighting and incident carries its shared value.
    assert "shares ipv4-addr 198.51.100.7" in svg
    assert 'class="edge evidence"' in svg
    assert "The graph as text" in graph_section(html)
    assert "Linked objects" in html  # the table stays


def test_partner_graph_draws_no_amber_object(client: TestClient,
                                             seeded: tuple[Store, Seeded]) -> None:
    store, s = seeded
    extra = link_amber_to_green_campaign(store, s)
    sign_in(client, "pat", s.passwords["pat"])
    html = client.get(f"{D}/objects/{s.green_campaign}").text
    section = graph_section(html)
    svg = svg_of(html)
    for secret in (SECRET_VALUE, SECRET_NAME, SECRET_CAMPAIGN, s.amber_indicator,
                   s.amber_sighting, s.amber_campaign):
        assert secret not in section, secret
    nodes = set(re.findall(r'data-node="([^"]+)"', svg))
    assert {s.green_campaign, s.green_indicator, s.incident, extra["id"]} <= nodes
    # The GREEN sighting of the AMBER indicator is drawn; what it is of is not.
    assert "sighting-of" not in section
    # The existing table still says which links are not shared.
    assert "not shared with you" in html


def test_campaign_graph_absent_without_links(client: TestClient,
                                             seeded: tuple[Store, Seeded]) -> None:
    _, s = seeded
    sign_in(client, "ana", s.passwords["ana"])
    html = client.get(f"{D}/objects/{s.amber_campaign}").text
    assert 'id="campaign-graph"' not in html
    assert client.get(f"{D}/objects/{s.green_indicator}").text.count("campaign-graph") == 0


# ---- layout ------------------------------------------------------------------------------

KINDS = ("incident", "sighting", "indicator", "intrusion-set", "member", "malware",
         "campaign")


def sample(n: int) -> list[Node]:
    nodes = [Node("campaign--c", "campaign", "C", "#", centre=True)]
    for i in range(n - 1):
        kind = KINDS[i % len(KINDS)]
        nodes.append(Node(f"{kind}--{i:03d}", kind, f"{kind} {i}", "#"))
    return nodes


def test_layout_is_deterministic() -> None:
    nodes = sample(25)
    a, size_a = layout(nodes)
    b, size_b = layout(list(reversed(nodes)))
    assert size_a == size_b
    assert sorted((n.id, n.x, n.y) for n in a) == sorted((n.id, n.x, n.y) for n in b)


def test_layout_centres_the_campaign_and_keeps_nodes_apart() -> None:
    for n in (1, 2, 3, 7, 12, 20, 33, 40):
        placed, size = layout(sample(n))
        assert len(placed) == n
        centre = next(p for p in placed if p.centre)
        assert (centre.x, centre.y) == (size / 2, size / 2)
        for p in placed:
            assert p.r <= p.x <= size - p.r and p.r <= p.y <= size - p.r
        for p, q in itertools.combinations(placed, 2):
            assert math.hypot(p.x - q.x, p.y - q.y) >= p.r + q.r + NODE_RADIUS, (n, p, q)


def test_layout_rings_by_kind() -> None:
    placed, size = layout(sample(30))
    c = size / 2

    def dist(kind: str) -> set[float]:
        return {round(math.hypot(p.x - c, p.y - c)) for p in placed if p.kind == kind}

    assert max(dist("incident")) < min(dist("indicator")) < min(dist("member"))
