"""Every tier x every TLP level x every endpoint: exactly what each member may see.

The expectation is written out here independently of `shieldwall.policy`, from the
rules in docs/taxii.md; a cell fails if the server shows one object too many or too few,
or if a hidden object can be told apart from one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from shieldwall.policy import Members
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.stix.timestamps import format_ts, parse_ts
from shieldwall.store import Provenance, Query, Store
from tests.factories import indicator
from tests.taxii.conftest import Server, db_url, make_home, start_server

TIERS = ("ally", "partner", "organisation")
RELATIONS = ("plain", "named", "group")  # not named; named in the audience; in a named group
KINDS = ("none", "named", "group")  # audience an object carries
MEMBERS = [f"{t}-{r}" for t in TIERS for r in RELATIONS]
GROUP = "task-force"


def expected(member: str, level: TLP, kind: str) -> bool:
    tier, relation = member.split("-")
    if level in (TLP.CLEAR, TLP.GREEN):
        return True
    named = kind == "named" and relation == "named"
    grouped = kind == "group" and relation == "group"
    if level == TLP.AMBER:
        return tier == "ally" or named or grouped
    return named  # AMBER+STRICT and RED: only members named, groups do not count


@dataclass
class World:
    server: Server
    tokens: dict[str, str]
    objects: dict[tuple[TLP, str], str]  # (level, audience kind) -> id
    added: dict[str, int]  # id -> date_added_us of its latest version
    added_first: dict[str, int]  # id -> date_added_us of its first version


@pytest.fixture(scope="module")
def world(backend: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = make_home(tmp_path_factory.mktemp("matrix"), backend)
    store = Store.open(db_url(home))
    reg = Members(store.engine)
    tokens = {m: reg.add(m, m.split("-")[0]) for m in MEMBERS}
    for m in MEMBERS:
        if m.endswith("-group"):
            reg.join(m, GROUP)
    audiences = {"none": None, "named": [f"{t}-named" for t in TIERS],
                 "group": [f"group:{GROUP}"]}
    objects: dict[tuple[TLP, str], str] = {}
    batch_v1, batch_v2 = [], []
    for level in TLP:
        for kind in KINDS:
            extra = {AUDIENCE_PROPERTY: audiences[kind]} if audiences[kind] else {}
            v1 = indicator(f"203.0.113.{len(objects)}", tlp=level, name=f"{level.name}-{kind}",
                           **extra)
            objects[(level, kind)] = v1["id"]
            batch_v1.append(v1)
            batch_v2.append(dict(v1, modified="2024-03-01T00:00:00.000Z"))
    prov = Provenance("home-node", "import", None)
    store.put_many(batch_v1, prov)
    store.put_many(batch_v2, prov)
    rows = store.query(Query(versions="all")).rows
    added = {r.id: r.date_added_us for r in rows if r.is_latest}
    first = {r.id: r.date_added_us for r in rows if not r.is_latest}
    store.close()
    server = start_server(home, "--rate-limit", "0")
    yield World(server, tokens, objects, added, first)
    server.stop()


def _client(world: World, member: str) -> httpx.Client:
    return httpx.Client(base_url=world.server.api(), auth=(member, world.tokens[member]),
                        headers={"Accept": "application/taxii+json;version=2.1"}, timeout=30)


def _visible_ids(world: World, member: str) -> set[str]:
    return {oid for (level, kind), oid in world.objects.items() if expected(member, level, kind)}


def _all_pages(client: httpx.Client, path: str, **params: str) -> tuple[list[dict], list]:
    items, headers = [], []
    nxt = None
    while True:
        p = dict(params, limit="4") | ({"next": nxt} if nxt else {})
        r = client.get(path, params=p)
        assert r.status_code == 200, r.text
        env = r.json()
        items += env.get("objects", [])
        headers.append((r.headers.get("X-TAXII-Date-Added-First"),
                        r.headers.get("X-TAXII-Date-Added-Last")))
        if not env["more"]:
            return items, headers
        nxt = env["next"]


@pytest.mark.parametrize("member", MEMBERS)
def test_lists_manifests_and_headers(world: World, member: str) -> None:
    want = _visible_ids(world, member)
    with _client(world, member) as c:
        objs, headers = _all_pages(c, "collections/alliance/objects/")
        assert sorted(o["id"] for o in objs) == sorted(want)
        assert all(o["modified"] == "2024-03-01T00:00:00.000Z" for o in objs)
        stamps = [parse_ts(h) for page in headers for h in page if h]
        assert stamps == sorted(stamps)  # pages advance in date_added order
        objs, _ = _all_pages(c, "collections/alliance/objects/", **{"match[version]": "all"})
        assert sorted(o["id"] for o in objs) == sorted(list(want) * 2)
        man, _ = _all_pages(c, "collections/alliance/manifest/")
        assert sorted(m["id"] for m in man) == sorted(want)
        man, _ = _all_pages(c, "collections/alliance/manifest/", **{"match[type]": "indicator",
                                                                       "match[version]": "first"})
        assert sorted(m["id"] for m in man) == sorted(want)
        assert {m["version"] for m in man} == {"2024-01-01T00:00:00.000Z"}
        # Header dates come only from visible versions.
        r = c.get("collections/alliance/objects/", params={"limit": "10000"})
        assert r.headers["X-TAXII-Date-Added-Last"] == format_ts(
            max(world.added[i] for i in want))
        assert r.headers["X-TAXII-Date-Added-First"] == format_ts(
            min(world.added[i] for i in want))
        r = c.get("collections/alliance/objects/", params={"match[version]": "first"})
        assert r.headers["X-TAXII-Date-Added-First"] == format_ts(
            min(world.added_first[i] for i in want))


@pytest.mark.parametrize("level", list(TLP), ids=lambda t: t.short)
@pytest.mark.parametrize("member", MEMBERS)
def test_each_object_endpoint(world: World, member: str, level: TLP) -> None:
    with _client(world, member) as c:
        ghost = f"indicator--{uuid.uuid4()}"
        missing_obj = c.get(f"collections/alliance/objects/{ghost}/")
        missing_ver = c.get(f"collections/alliance/objects/{ghost}/versions/")
        missing_del = c.delete(f"collections/alliance/objects/{ghost}/")
        assert missing_obj.status_code == missing_ver.status_code == 404
        for kind in KINDS:
            oid = world.objects[(level, kind)]
            see = expected(member, level, kind)
            obj = c.get(f"collections/alliance/objects/{oid}/")
            ver = c.get(f"collections/alliance/objects/{oid}/versions/")
            listed = c.get("collections/alliance/objects/", params={"match[id]": oid})
            man = c.get("collections/alliance/manifest/", params={"match[id]": oid})
            sightings = c.get(f"collections/sightings/objects/{oid}/")
            assert sightings.status_code == 404  # never delivered into that collection
            if see:
                assert obj.status_code == 200
                assert [o["id"] for o in obj.json()["objects"]] == [oid]
                assert obj.headers["X-TAXII-Date-Added-Last"] == format_ts(world.added[oid])
                assert ver.json()["versions"] == ["2024-01-01T00:00:00.000Z",
                                                  "2024-03-01T00:00:00.000Z"]
                assert [o["id"] for o in listed.json()["objects"]] == [oid]
                assert [o["id"] for o in man.json()["objects"]] == [oid]
            else:
                # Indistinguishable from an id that was never stored.
                assert (obj.status_code, obj.content) == (404, missing_obj.content)
                assert (ver.status_code, ver.content) == (404, missing_ver.content)
                assert "X-TAXII-Date-Added-Last" not in obj.headers
                assert listed.json() == {"more": False}
                assert man.json() == {"more": False}
                gone = c.delete(f"collections/alliance/objects/{oid}/")
                assert (gone.status_code, gone.content) == (
                    missing_del.status_code, missing_del.content)
