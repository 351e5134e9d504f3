"""Posture: self-assessment scoring, dated snapshots at the member's TLP, trends."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shieldwall.node import Node
from shieldwall.pledge.posture import (
    POSTURE_TYPE,
    AssessmentError,
    cis_ig1,
    compute,
    load_assessment,
    score_assessment,
    to_stix,
)
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Provenance

from .conftest import DATA, run


def test_ig1_has_56_safeguards_in_18_controls_less_the_ig2_only_ones() -> None:
    sg = cis_ig1()["safeguards"]
    assert len(sg) == 56 and len({s["id"] for s in sg}) == 56
    assert {s["control"] for s in sg} == {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 17}


def test_scoring_like_csat_implemented(tmp_path: Path) -> None:
    f = tmp_path / "a.toml"
    f.write_text('[safeguards]\n"5.2" = "implemented on all systems"\n'
                 '"6.3" = "Implemented on Most Systems"\n"3.6" = "not applicable"\n')
    answers = load_assessment(f)
    s = score_assessment(answers)
    assert s["coverage"] == round((1.0 + 0.75) / 55, 4)  # 55 applicable; unanswered are 0
    assert s["implemented_fully"] == 1
    bad = tmp_path / "b.toml"
    bad.write_text('"99.1" = "implemented on all systems"\n')
    with pytest.raises(AssessmentError):
        load_assessment(bad)


def test_index_and_stix_snapshot() -> None:
    p = compute("estonia", {"passwords": {"score": 0.5}, "patches": {"score": 1.0}},
                {"coverage": 0.5, "commitments": {"hygiene": 0.5, "defend-networks": 0.5,
                                                  "education": 0.0,
                                                  "understanding-threats": 1.0}},
                date="2026-03-01")
    assert p.index == 62.5  # checks (0.4*0.5 + 0.4*1.0)/0.8 = 0.75, CIS 0.5
    obj = to_stix(p)
    assert obj["type"] == POSTURE_TYPE and obj["object_marking_refs"] == [
        tlp_marking_ref(TLP.AMBER_STRICT)]
    assert obj[AUDIENCE_PROPERTY] == ["coordination-cell"]
    assert AUDIENCE_PROPERTY not in to_stix(p, TLP.GREEN)


def test_cli_snapshot_and_trend(home: Path, cli, tmp_path: Path) -> None:
    plain = tmp_path / "c.csv"
    plain.write_text("account,password\nann,dragon\nbo,Vq7#rT!x9Lm@2pWz\n")
    run(cli, "hygiene", "passwords", str(plain), "--record", "--home", str(home))
    run(cli, "hygiene", "mail", str(DATA / "mail"), "--record", "--home", str(home))
    a = tmp_path / "a.toml"
    a.write_text('"5.2" = "implemented on all systems"\n')
    out = run(cli, "hygiene", "snapshot", "--assessment", str(a), "--home", str(home))
    assert "index" in out
    # an earlier snapshot from another member, as federation would deliver it
    node = Node.load(home)
    old = to_stix(compute("latvia", {"patches": {"score": 0.4}}, None, date="2025-01-01"))
    new = to_stix(compute("latvia", {"patches": {"score": 0.9}}, None, date="2026-01-01"))
    node.store.put_many([old, new], Provenance("latvia", "taxii"))
    node.close()
    data = orjson.loads(run(cli, "hygiene", "report", "--json", "--home", str(home)))
    assert set(data) == {"estonia", "latvia"}
    assert [s["x_shieldwall_index"] for s in data["latvia"]] == [40.0, 90.0]
    snap = data["estonia"][0]
    assert set(snap["x_shieldwall_checks"]) == {"passwords", "mail"}
    assert "counts" not in snap["x_shieldwall_checks"]["passwords"]
    assert "dragon" not in orjson.dumps(snap).decode()
    text = run(cli, "hygiene", "report", "--home", str(home))
    assert "latvia" in text and "+50.0" in text
