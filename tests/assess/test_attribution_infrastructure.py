"""Infrastructure in attribution: the store's own links from observed values to actors,
on the bundled APT1 report, read with the reader's access."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from shieldwall.assess.attribution import Evidence, rank
from shieldwall.assess.infrastructure import infrastructure_links
from shieldwall.ingest.runner import import_file
from shieldwall.policy.model import Member
from shieldwall.stix.identity import member_identity
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import access_for

APT1 = Path(__file__).resolve().parents[2] / "shieldwall" / "data" / "stix" / "apt1.json"
TS = "2024-05-02T00:00:00.000Z"


def _apt1(store: Store) -> None:
    import_file(store, APT1, source="coordination-cell", producer=member_identity("cell"),
                default_tlp=TLP.GREEN)


def test_an_apt1_domain_leads_to_apt1_through_its_threat_actor(store: Store) -> None:
    """arrowservice.net indicates "Ugly Gorilla", whom APT1 is attributed to: two hops."""
    _apt1(store)
    links = infrastructure_links(store, ["arrowservice.net", "hugesoft.org", "example.org"])
    assert links == {"arrowservice.net": {"G0006"}, "hugesoft.org": {"G0006"}}
    # A value that only contains a known one is not that value.
    assert infrastructure_links(store, ["rrowservice.net", "xarrowservice.net"]) == {}


def test_a_link_raises_its_group_with_the_value_shown(sqlite_store: Store) -> None:
    _apt1(sqlite_store)
    evidence = Evidence(("T1566.001", "T1059.003"), (), ("arrowservice.net",))
    plain = rank(evidence)
    linked = rank(evidence, infrastructure_links=infrastructure_links(
        sqlite_store, evidence.infrastructure))
    assert plain.candidates[0].attack_id != "G0006"
    top = linked.candidates[0]
    assert top.attack_id == "G0006"
    assert "infrastructure:arrowservice.net" in top.shared


def test_a_red_link_never_raises_a_candidate_for_a_wider_audience(store: Store) -> None:
    """An ally must not learn from a ranking what a TLP:RED link names."""
    value = "203.0.113.66"
    actor = {"type": "intrusion-set", "spec_version": "2.1",
             "id": f"intrusion-set--{uuid.uuid4()}", "created": TS, "modified": TS,
             "name": "Fancy Bear"}
    ind = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
           "created": TS, "modified": TS, "valid_from": TS, "pattern_type": "stix",
           "pattern": f"[ipv4-addr:value = '{value}']"}
    rel = {"type": "relationship", "spec_version": "2.1",
           "id": f"relationship--{uuid.uuid4()}", "created": TS, "modified": TS,
           "relationship_type": "indicates", "source_ref": ind["id"],
           "target_ref": actor["id"]}
    red = [{**o, "object_marking_refs": [tlp_marking_ref(TLP.RED)],
            AUDIENCE_PROPERTY: ["latvia"]} for o in (actor, ind, rel)]
    store.put_many(red, Provenance("latvia", "taxii"))
    assert infrastructure_links(store, [value]) == {value: {"G0007"}}  # the operator
    assert infrastructure_links(store, [value], access=access_for(
        Member("latvia", "ally"))) == {value: {"G0007"}}  # named in the audience
    for member in (Member("estonia", "ally"), Member("partnerland", "partner")):
        assert infrastructure_links(store, [value], access=access_for(member)) == {}
    # Actor and indicator shared at GREEN, only the link between them RED: the link is
    # what must stay with its audience.
    other = "203.0.113.67"
    g_actor = {**actor, "id": f"intrusion-set--{uuid.uuid4()}",
               "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]}
    g_ind = {**ind, "id": f"indicator--{uuid.uuid4()}", "pattern":
             f"[ipv4-addr:value = '{other}']", "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]}
    r_rel = {**rel, "id": f"relationship--{uuid.uuid4()}", "source_ref": g_ind["id"],
             "target_ref": g_actor["id"], "object_marking_refs": [tlp_marking_ref(TLP.RED)],
             AUDIENCE_PROPERTY: ["latvia"]}
    store.put_many([g_actor, g_ind, r_rel], Provenance("latvia", "taxii"))
    assert infrastructure_links(store, [other], access=access_for(
        Member("estonia", "ally"))) == {}
    assert infrastructure_links(store, [other], access=access_for(
        Member("latvia", "ally"))) == {other: {"G0007"}}


def test_cli_ranks_with_the_node_s_links(tmp_path: Path) -> None:
    home = tmp_path / "cell"
    run = [sys.executable, "-m", "shieldwall.cli.main"]
    subprocess.run([*run, "init", "--home", str(home), "--member", "coordination-cell",
                    "--tier", "ally"], check=True, capture_output=True)
    subprocess.run([*run, "import", "--home", str(home), "--tlp", "green", str(APT1)],
                   check=True, capture_output=True)
    out = subprocess.run([*run, "attribute", "--home", str(home), "--techniques",
                          "T1566.001,T1059.003", "--infrastructure", "arrowservice.net",
                          "--json"], check=True, capture_output=True, text=True)
    candidates = json.loads(out.stdout)["candidates"]
    assert candidates[0]["attack_id"] == "G0006"
    assert "infrastructure:arrowservice.net" in candidates[0]["shared"]


def test_cli_reads_an_incident_as_correlation_does(tmp_path: Path) -> None:
    """`attribute --incident` uses the incident's own techniques and the values of the
    indicators it names, so the node's link from arrowservice.net to APT1 counts."""
    home = tmp_path / "cell"
    run = [sys.executable, "-m", "shieldwall.cli.main"]

    def cli(*args: str) -> str:
        return subprocess.run([*run, *args, "--home", str(home)], check=True,
                              capture_output=True, text=True).stdout

    cli("init", "--member", "coordination-cell", "--tier", "ally")
    cli("import", "--tlp", "green", str(APT1))
    bundle = json.loads(APT1.read_text())
    indicator = next(o["id"] for o in bundle["objects"] if o["type"] == "indicator"
                     and "arrowservice.net" in o.get("pattern", ""))
    inc = json.loads(cli("incident", "open", "--name", "Beacon to a known domain",
                         "--sector", "government", "-t", "T1566.001", "-t", "T1059.003",
                         "--indicator", indicator, "--json"))
    out = json.loads(cli("attribute", "--incident", inc["id"], "--json"))
    top = out["candidates"][0]
    assert top["attack_id"] == "G0006"
    assert "infrastructure:arrowservice.net" in top["shared"]
    assert {"T1566.001", "T1059.003"} <= {s.split(" ")[0] for c in out["candidates"]
                                          for s in c["shared"]}
