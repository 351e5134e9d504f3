"""Severity: the worked examples of docs/assessment.md, asserted."""

from __future__ import annotations

import pytest

from shieldwall.assess.severity import (
    INCIDENT_CORE_EXTENSION,
    MemberIncident,
    SeverityError,
    load_config,
    score_campaign,
    score_incident,
    with_scores,
)

WANNACRY_LIKE = {
    "functional_impact": "significant", "observed_activity": "effect",
    "location_of_activity": "business-network", "actor_characterization": "criminal",
    "information_impact": "destruction-of-non-critical", "recoverability": "extended",
    "cross_sector_dependency": "high", "potential_impact": "high",
}


def test_weights_sum_to_one_and_version_is_recorded() -> None:
    cfg = load_config()
    assert abs(sum(f.weight for f in cfg.factors) - 1) < 1e-9
    assert len(cfg.factors) == 8 and cfg.version == "nciss-v1"


def test_example_1_hospital_ransomware() -> None:
    s = score_incident(WANNACRY_LIKE)
    assert (s.score, s.level, s.colour, s.imputed) == (65.5, "High", "orange", [])


def test_example_2_reconnaissance_imputed_and_flagged() -> None:
    s = score_incident({"observed_activity": "prepare"})
    assert (s.score, s.level, s.colour) == (35.0, "Low", "green")
    assert len(s.imputed) == 7 and "observed_activity" not in s.imputed


def test_example_3_worst_case() -> None:
    cfg = load_config()
    worst = {f.name: max(f.options, key=f.options.__getitem__) for f in cfg.factors}
    s = score_incident(worst)
    assert (s.score, s.level, s.colour) == (100.0, "Emergency", "black")


def test_example_4_campaign() -> None:
    c = score_campaign([
        MemberIncident("alpha", "health", 65.5, "2017-05-12T08:00:00Z"),
        MemberIncident("bravo", "energy", 60.5, "2017-05-12T14:00:00Z"),
        MemberIncident("charlie", "government", 40.0, "2017-05-13T09:00:00Z"),
    ])
    assert (c.score, c.level, c.colour) == (90.5, "Emergency", "black")
    assert (c.base, c.breadth, c.sectors, c.spread) == (65.5, 10.0, 10.0, 5.0)


def test_single_member_campaign_has_no_breadth_bonus() -> None:
    c = score_campaign([MemberIncident("alpha", "retail", 30.0, "2017-05-12T08:00:00Z")])
    assert (c.score, c.level) == (30.0, "Low")


def test_unknown_answer_is_a_user_error() -> None:
    with pytest.raises(SeverityError, match="choose one of"):
        score_incident({"recoverability": "someday"})
    with pytest.raises(SeverityError, match="unknown factor"):
        score_incident({"vibes": "bad"})


def test_breakdown_lands_in_incident_scores() -> None:
    incident = {"type": "incident", "id": "incident--0d4c5b4e-1f2a-4e8e-9a3b-2c1d0e9f8a7b",
                "extensions": {INCIDENT_CORE_EXTENSION: {"extension_type":
                                                         "property-extension"}}}
    s = score_incident(WANNACRY_LIKE)
    new = with_scores(with_scores(incident, s), s)  # idempotent per version
    scores = new["extensions"][INCIDENT_CORE_EXTENSION]["scores"]
    assert len(scores) == 1 and scores[0]["value"] == 65.5
    assert scores[0]["x_shieldwall_breakdown"]["level"] == "High"
    assert "extensions" in incident and "scores" not in incident["extensions"][
        INCIDENT_CORE_EXTENSION]
