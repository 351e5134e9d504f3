"""A CI slice of the attribution evaluation (the full run is bench/attribution_eval.py).

Floor: the full campaign protocols measure 57-62% top-3 (docs/benchmarks.md); the slice
of 30 cases (every campaign case, with and without software, capped) must keep top-3 at
or above 45%, a margin for the slice's smaller size, not for regressions.
"""

from __future__ import annotations

from shieldwall.assess.actors import attack_catalog
from shieldwall.assess.evaluation import campaign_cases, run, summarise

TOP3_FLOOR = 0.45


def test_campaign_slice_top3_floor() -> None:
    catalog = attack_catalog()
    cases = (campaign_cases(catalog) + campaign_cases(catalog, with_software=True))[:30]
    assert len(cases) == 30
    outcomes = run(cases, catalog)
    for o in outcomes:  # the answer never sits in the campaign's own profile contribution
        assert o.case.exclude_campaign
    metrics = summarise(outcomes)["all"]
    assert metrics.rate(3) >= TOP3_FLOOR, metrics.top
