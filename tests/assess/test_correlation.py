"""Correlation into candidate campaigns on the bundled real intelligence, with caps."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from shieldwall.assess.correlation import (
    EVIDENCE,
    CorrelationConfig,
    CorrelationError,
    Correlator,
    campaign_objects,
    links_between,
    pattern_values,
    publish_campaigns,
)
from shieldwall.assess.incidents import IncidentFields, new_incident
from shieldwall.ingest.runner import import_file
from shieldwall.node import member_identity, member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import format_ts, parse_ts
from shieldwall.store import Provenance, Query, Store

DATA = Path(__file__).resolve().parents[2] / "shieldwall" / "data"
FILES = {
    "apt1": DATA / "stix" / "apt1.json",
    "poisonivy": DATA / "stix" / "poisonivy.json",
    "qakbot": DATA / "misp" / "circl-osint-qakbot-emotet.json",
    "sunorcal": DATA / "misp" / "circl-osint-sunorcal.json",
    "xorist": DATA / "misp" / "circl-osint-ransomware-xorist.json",
}
T0 = parse_ts("2024-05-01T00:00:00Z")
DAY = 86_400 * 1_000_000


def _sighting(member: str, indicator_id: str, day: float, od: str | None = None
              ) -> dict[str, Any]:
    ts = format_ts(T0 + int(day * DAY))
    s: dict[str, Any] = {
        "type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
        "created": ts, "modified": ts, "created_by_ref": member_identity_id(member),
        "sighting_of_ref": indicator_id, "where_sighted_refs": [member_identity_id(member)],
        "first_seen": ts, "last_seen": ts, "count": 1,
    }
    if od:
        s["observed_data_refs"] = [od]
    return s


def _observed(values: list[tuple[str, str]], day: float = 0) -> list[dict[str, Any]]:
    scos = [{"type": t, "spec_version": "2.1", "id": f"{t}--{uuid.uuid4()}", "value": v}
            for t, v in values]
    ts = format_ts(T0 + int(day * DAY))
    od = {"type": "observed-data", "spec_version": "2.1", "id": f"observed-data--{uuid.uuid4()}",
          "created": ts, "modified": ts, "first_observed": ts, "last_observed": ts,
          "number_observed": 1, "object_refs": [s["id"] for s in scos]}
    return [*scos, od]


def _indicator(pattern: str) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def intel(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, list[str]]]:
    """A coordination store holding the bundled reports and MISP events; indicator ids by
    source file (sorted, so tests pick the same ones every run)."""
    path = tmp_path_factory.mktemp("intel") / "intel.db"
    url = f"sqlite:///{path}"
    store = Store.open(url)
    by_file: dict[str, list[str]] = {}
    seen: set[str] = set()
    for name, f in FILES.items():
        import_file(store, f, source="coordination-cell", producer=member_identity("cell"),
                    default_tlp=TLP.GREEN)
        ids = {r.id for r in store.iter_query(Query(types=["indicator"]))} - seen
        seen |= ids
        by_file[name] = sorted(ids)
    store.close()
    return url, by_file


def _copy(url: str, tmp_path: Path) -> Store:
    import shutil

    src = Path(url.removeprefix("sqlite:///"))
    dst = tmp_path / "store.db"
    shutil.copy(src, dst)
    return Store.open(f"sqlite:///{dst}")


def test_pattern_values_name_infrastructure() -> None:
    assert pattern_values("[ipv4-addr:value = '198.51.100.7' OR domain-name:value = 'Ex.ORG']"
                          ) == {("ip", "198.51.100.7"), ("domain", "ex.org")}
    assert pattern_values("[file:hashes.'SHA-256' = 'AB12'] AND [x509-certificate:"
                          "hashes.'SHA-1' = 'CD34']") == {("file-hash", "ab12"),
                                                          ("certificate", "cd34")}
    assert pattern_values("[process:name = 'cmd.exe']") == set()


def test_real_intelligence_split_across_members_forms_one_campaign_per_family(
        intel: tuple[str, dict[str, list[str]]], tmp_path: Path) -> None:
    url, ids = intel
    store = _copy(url, tmp_path)
    apt1, ivy, qak, xor = ids["apt1"], ids["poisonivy"], ids["qakbot"], ids["xorist"]
    assert apt1 and ivy and qak and xor
    # Poison Ivy indicators with the same IP but different ids: an infrastructure link.
    ivy_by_value: dict[tuple[str, str], list[str]] = {}
    for row in store.query(Query(ids=ivy)).rows:
        for v in pattern_values(row.obj()["pattern"]):
            ivy_by_value.setdefault(v, []).append(row.id)
    shared_ip, (ivy_c, ivy_d, *_) = next((v, i) for v, i in sorted(ivy_by_value.items())
                                         if len(i) >= 2)
    objs = [
        _sighting("cert-a", apt1[0], 0), _sighting("cert-a", apt1[1], 1),
        _sighting("cert-b", apt1[1], 2), _sighting("cert-b", apt1[2], 3),
        _sighting("cert-c", ivy_c, 1), _sighting("cert-d", ivy_d, 2),
        _sighting("cert-f", qak[0], 4), _sighting("cert-g", xor[0], 4),
    ]
    incident = new_incident(member_identity_id("cert-e"), IncidentFields(
        name="Emotet dropper at a ministry", sector="government-national",
        indicator_refs=[qak[0], qak[1]], first_seen=format_ts(T0 + 3 * DAY)))
    objs += incident
    members = {o["id"]: m for o in objs for m in ["cert-" + c for c in "abcdefg"]
               if o.get("created_by_ref") == member_identity_id(m)}
    store.put_many(objs, Provenance("federation", "taxii"))
    c = Correlator(store)
    c.add_many(objs, members=members)
    groups = c.groups()
    families = {frozenset(g.members) for g in groups}
    assert families == {frozenset({"cert-a", "cert-b"}), frozenset({"cert-c", "cert-d"}),
                        frozenset({"cert-e", "cert-f"})}
    # The evidence names what the members share.
    assert links_between(store, objs[4]["id"], objs[5]["id"]) == [shared_ip]
    assert ("indicator", apt1[1]) in links_between(store, objs[1]["id"], objs[2]["id"])
    # Only the sightings of the shared APT1 indicator link; the others share nothing.
    apt_group = next(g for g in groups if "cert-a" in g.members)
    assert apt_group.ids() == {objs[1]["id"], objs[2]["id"]}

    stix = campaign_objects(store, apt_group, created_by_ref=member_identity_id("cell"))
    campaign = stix[0]
    assert campaign["type"] == "campaign" and campaign["x_shieldwall_candidate"] is True
    assert campaign["x_shieldwall_members"] == ["cert-a", "cert-b"]
    assert campaign["x_shieldwall_severity"]["members"] == ["cert-a", "cert-b"]
    evidence = [r for r in stix if r["type"] == "relationship" and EVIDENCE in r]
    assert {"kind": "indicator", "value": apt1[1]} in evidence[0][EVIDENCE] or any(
        {"kind": "indicator", "value": apt1[1]} in r[EVIDENCE] for r in evidence)
    assert all(r["source_ref"] in apt_group.ids() for r in evidence)
    qak_group = next(g for g in groups if "cert-e" in g.members)
    qstix = campaign_objects(store, qak_group, created_by_ref=member_identity_id("cell"))
    assert qstix[0]["x_shieldwall_severity"]["sector_names"] == ["government-national"]
    store.close()


def test_over_common_value_is_capped_and_reported(sqlite_store: Store) -> None:
    """8.8.8.8 in 500 sightings links none of them; a rare shared domain still links two."""
    objs: list[dict[str, Any]] = []
    for i in range(500):
        ind = _indicator(f"[url:value = 'http://x{i}.example/a']")
        values = [("ipv4-addr", "8.8.8.8")]
        if i in (7, 300):
            values.append(("domain-name", "rare-c2.example"))
        extra = _observed(values, day=i / 100)
        objs += [ind, *extra, _sighting(f"m{i % 40}", ind["id"], i / 100, extra[-1]["id"])]
    c = Correlator(sqlite_store, CorrelationConfig(max_objects=50))
    result = c.add_many(objs)
    groups = c.groups(min_members=1)
    assert len(groups) == 1
    sightings = [o for o in objs if o["type"] == "sighting"]
    assert groups[0].ids() == {sightings[7]["id"], sightings[300]["id"]}
    assert groups[0].links == [(*sorted((sightings[7]["id"], sightings[300]["id"])),
                                "domain", "rare-c2.example")]
    capped = c.capped()
    assert [(x.kind, x.value, x.objects, x.reason) for x in capped] == [
        ("ip", "8.8.8.8", 500, "over-common")]
    assert result.capped_now == [("ip", "8.8.8.8")] and result.withdrawn_links > 0
    assert c.stats()["links"] == 1


def test_warninglisted_indicator_links_nothing(store: Store) -> None:
    ind = _indicator("[ipv4-addr:value = '1.1.1.1']")
    store.put(ind, Provenance("feed"))
    store.tag([(ind["id"], "warninglist", "public DNS resolvers")])
    c = Correlator(store)
    c.add_many([_sighting("cert-a", ind["id"], 0), _sighting("cert-b", ind["id"], 1)])
    assert c.groups(min_members=1) == []
    assert sorted((x.kind, x.value, x.objects, x.reason) for x in c.capped()) == [
        ("indicator", ind["id"], 2, "warninglist"), ("ip", "1.1.1.1", 2, "warninglist")]


def test_benign_values_from_config_link_nothing(tmp_path: Path) -> None:
    objs: list[dict[str, Any]] = []
    for member in ("cert-a", "cert-b"):
        ind = _indicator(f"[url:value = 'http://{member}.example/']")
        extra = _observed([("ipv4-addr", "1.1.1.1")])
        objs += [ind, *extra, _sighting(member, ind["id"], 0, extra[-1]["id"])]
    plain = Store.open(f"sqlite:///{tmp_path / 'plain.db'}")
    linked = Correlator(plain)
    linked.add_many(objs)
    assert len(linked.groups()) == 1
    listed = Store.open(f"sqlite:///{tmp_path / 'listed.db'}")
    apart = Correlator(listed, CorrelationConfig(benign=frozenset({("ip", "1.1.1.1")})))
    apart.add_many(objs)
    assert apart.groups() == []
    plain.close()
    listed.close()


def test_time_window_keeps_distant_sightings_apart(store: Store) -> None:
    ind = _indicator("[domain-name:value = 'c2.example']")
    store.put(ind, Provenance("feed"))
    near, far = _sighting("cert-a", ind["id"], 0), _sighting("cert-b", ind["id"], 5)
    late = _sighting("cert-c", ind["id"], 90)
    c = Correlator(store, CorrelationConfig(window_days=30))
    c.add_many([near, far, late])
    [group] = c.groups()
    assert group.ids() == {near["id"], far["id"]}


def _mixed_corpus(store: Store) -> list[dict[str, Any]]:
    rng = random.Random(6)
    pool = [_indicator(f"[domain-name:value = 'd{i}.example']") for i in range(25)]
    store.put_many(pool, Provenance("feed"))
    objs: list[dict[str, Any]] = []
    for i in range(150):
        values = [("ipv4-addr", "9.9.9.9")] if i % 2 == 0 else []  # over-common at cap 20
        values.append(("ipv4-addr", f"203.0.113.{rng.randrange(40)}"))
        extra = _observed(values)
        objs += [*extra, _sighting(f"m{rng.randrange(6)}", rng.choice(pool)["id"],
                                   rng.uniform(0, 120), extra[-1]["id"])]
    for i in range(12):
        inc = new_incident(member_identity_id(f"m{i % 6}"), IncidentFields(
            name=f"incident {i}", techniques=[rng.choice(["T1486", "T1566.001", "T1059"])],
            first_seen=format_ts(T0 + int(rng.uniform(0, 120) * DAY))))
        objs += inc
    return objs


def _partition(c: Correlator) -> set[frozenset[str]]:
    return {g.ids() for g in c.groups(min_size=1, min_members=1)}


def test_incremental_in_shuffled_order_equals_batch(tmp_path: Path) -> None:
    a = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    objs = _mixed_corpus(a)
    b = Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    b.put_many([r.obj() for r in a.iter_query(Query(types=["indicator"]))], Provenance("feed"))
    cfg = CorrelationConfig(window_days=20, max_objects=20, caps={"technique": 5})
    batch = Correlator(a, cfg)
    batch.add_many(objs)
    # One by one, each correlated object with the companions it refers to, shuffled.
    companions = {o["id"]: o for o in objs if o["type"] not in ("sighting", "incident")}
    units = [o for o in objs if o["type"] in ("sighting", "incident")]
    random.Random(1).shuffle(units)
    inc = Correlator(b, cfg)
    for u in units:
        refs = [*u.get("observed_data_refs", []), *u.get("x_shieldwall_related_refs", [])]
        extra = [companions[r] for r in refs if r in companions]
        extra += [companions[s] for od in extra for s in od.get("object_refs", [])]
        inc.add(u, u["created_by_ref"], extra)
    assert _partition(batch) == _partition(inc)
    assert len([g for g in _partition(batch) if len(g) > 1]) >= 3  # the test links something
    assert {(x.kind, x.value) for x in batch.capped()} == {(x.kind, x.value)
                                                           for x in inc.capped()}
    assert ("ip", "9.9.9.9") in {(x.kind, x.value) for x in batch.capped()}
    assert batch.stats() == inc.stats()
    a.close()
    b.close()


def test_update_from_store_is_incremental_and_campaigns_publish(store: Store) -> None:
    ind = _indicator("[file:hashes.'SHA-256' = 'aa11']")
    store.put(ind, Provenance("feed"))
    store.put(_sighting("cert-a", ind["id"], 0), Provenance("cert-a", "taxii"))
    c = Correlator(store)
    assert c.update_from_store().new_links == 0
    store.put(_sighting("cert-b", ind["id"], 1), Provenance("cert-b", "taxii"))
    assert c.update_from_store().new_links == 2  # the indicator and its file hash
    assert c.update_from_store().new_links == 0  # nothing new since the cursor
    assert c.stats()["objects"] == 2
    [campaign] = publish_campaigns(store, c, member="cell",
                                   created_by_ref=member_identity_id("cell"))
    stored = store.get(campaign["id"])
    assert stored is not None and stored.obj()["x_shieldwall_members"] == ["cert-a", "cert-b"]


def test_config_refuses_caps_that_link_nothing() -> None:
    with pytest.raises(CorrelationError):
        CorrelationConfig(max_objects=1)


def test_incidents_link_through_the_indicators_their_sightings_are_of(store: Store) -> None:
    """Two members' incidents with no technique in common, each backed by its own sighting
    of one shared indicator, belong to one group with their sightings."""
    ind = _indicator("[domain-name:value = 'iuqerfsodp9ifjaposdfjhgosurijfaewrwergwea.com']")
    store.put(ind, Provenance("north", "import"))
    objs: list[dict[str, Any]] = []
    for member, technique, day in (("south", "T1486", 0.0), ("east", "T1018", 0.5)):
        s = _sighting(member, ind["id"], day)
        inc = new_incident(member_identity_id(member), IncidentFields(
            name=f"outbreak at {member}", techniques=[technique], sighting_refs=[s["id"]],
            first_seen=s["first_seen"]))
        store.put(s, Provenance(member, "federation"))
        store.put_many(inc, Provenance(member, "federation"))
        objs.extend([s, inc[0]])
    c = Correlator(store)
    c.update_from_store()
    groups = c.groups()
    assert len(groups) == 1
    assert {o["id"] for o in objs} <= set(groups[0].ids())
    assert groups[0].members == ["east", "south"]
