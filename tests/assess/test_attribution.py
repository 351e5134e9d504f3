"""Attribution support on the real ATT&CK and MISP galaxy data shipped offline."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from shieldwall.assess.actors import STATE, actor_index, actor_type, attack_catalog
from shieldwall.assess.attribution import (
    NO_CONFIDENT,
    AttributionError,
    attribute,
    attributed_to,
)


@pytest.mark.parametrize("name", ["Fancy Bear", "Sofacy", "STRONTIUM", "APT28", "apt 28",
                                  "Forest Blizzard", "G0007"])
def test_aliases_resolve_to_one_actor(name: str) -> None:
    assert actor_index().resolve(name) == "G0007"


def test_unknown_alias_is_none() -> None:
    assert actor_index().resolve("Definitely Not An Actor 42") is None


def test_real_attack_data_is_loaded() -> None:
    c = attack_catalog()
    assert len(c.groups) > 150
    assert c.groups["G0007"].name == "APT28"
    assert "T1566.001" in c.technique_names
    assert c.canonical_technique("T1193") == "T1566.001"  # revoked id follows its successor


def test_full_profile_ranks_its_group_first() -> None:
    for gid in ("G0007", "G0032", "G0034", "G0016"):
        g = attack_catalog().groups[gid]
        result = attribute(list(g.techniques), list(g.software))
        assert result.candidates[0].attack_id == gid
        assert result.candidates[0].shared


def test_thin_evidence_is_no_confident_attribution() -> None:
    result = attribute(["T1566.001", "T1059.005"])
    assert result.verdict == NO_CONFIDENT
    assert attributed_to(result, "incident--0d4c5b4e-1f2a-4e8e-9a3b-2c1d0e9f8a7b") == []


def test_ubiquitous_techniques_weigh_less_than_rare_ones() -> None:
    from shieldwall.assess.attribution import default_profiles

    idf = default_profiles().idf
    assert idf["T1105"] < idf["T1566.001"] < idf["T1498"]


def test_missing_and_shared_are_explained() -> None:
    result = attribute(["T1566.001"], ["S0366"])
    top = result.candidates[0]
    assert "S0366" in top.shared and "T1566.001" in top.shared
    assert top.missing and all(t not in ("T1566.001",) for t in top.missing)


def test_stix_relationship_is_an_assessment_with_confidence() -> None:
    # The shipped confidence never reaches the verdict threshold on ATT&CK evidence
    # (test_attribution_calibration.py), so the wording is checked with a calibration
    # that does: the shipped logistic map without its second stage.
    from dataclasses import replace

    from shieldwall.assess.attribution import load_calibration

    logistic = replace(load_calibration(), steps=())
    g = attack_catalog().groups["G0007"]
    result = attribute(list(g.techniques), list(g.software), calibration=logistic)
    rels = attributed_to(result, "incident--0d4c5b4e-1f2a-4e8e-9a3b-2c1d0e9f8a7b",
                         calibration=logistic)
    assert rels and rels[0]["relationship_type"] == "attributed-to"
    assert rels[0]["target_ref"] == g.stix_id
    assert 0 <= rels[0]["confidence"] <= 100
    assert "not a statement of fact" in rels[0]["description"]


def test_actor_type_rule() -> None:
    assert actor_type("G0007").kind == STATE
    assert actor_type("G0046").kind == "criminal"  # FIN7


def test_no_known_ids_is_a_user_error() -> None:
    with pytest.raises(AttributionError, match="T9999"):
        attribute(["T9999"])


def test_cli_json_shape_without_node_home(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shieldwall.cli.main", "attribute", "--techniques",
         "T1566.001,T1059.005", "--software", "S0366", "--json"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
        env={"PATH": "", "SHIELDWALL_HOME": str(tmp_path / "none")},
    )
    assert proc.returncode == 0, proc.stderr
    data = orjson.loads(proc.stdout)
    assert set(data) == {"candidates", "verdict"}
    first = data["candidates"][0]
    assert set(first) == {"attack_id", "group", "score", "confidence", "shared", "missing"}
    scores = [c["score"] for c in data["candidates"]]
    assert scores == sorted(scores, reverse=True)


def test_ranking_note_keeps_leads_without_asserting_them() -> None:
    from shieldwall.assess.attribution import attribute, ranking_note
    from shieldwall.stix.validate import object_error

    ranking = attribute(techniques=["T1210", "T1486"], software=["S0366"])
    note = ranking_note(ranking, "campaign--11111111-1111-4111-8111-111111111111", top=3)
    assert object_error(note) is None
    assert note["object_refs"] == ["campaign--11111111-1111-4111-8111-111111111111"]
    cands = note["x_shieldwall_attribution"]["candidates"]
    assert len(cands) == min(3, len(ranking.candidates))
    assert cands[0]["attack_id"] == ranking.candidates[0].attack_id
    assert {"shared", "missing", "confidence"} <= set(cands[0])
    assert "not a statement of fact" in note["content"]
