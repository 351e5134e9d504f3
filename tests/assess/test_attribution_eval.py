"""A CI slice of the attribution evaluation (the full run is bench/attribution_eval.py).

Floor: the full campaign protocols measure 52-57% top-3 out of sample (nested
leave-one-group-out, docs/benchmarks.md); the slice of 30 cases (every campaign case,
then campaign+software cases, capped) ranked the same nested way with a 3-point weight
grid must keep top-3 at or above 45%, a margin for the slice's smaller size, not for
regressions. The slice is graded out of sample too: the shipped weights were chosen on
these very campaigns, so grading them here would flatter them.
"""

from __future__ import annotations

from shieldwall.assess import evaluation
from shieldwall.assess.actors import attack_catalog, parent_technique
from shieldwall.assess.attribution import DEFAULT_WEIGHTS, Weights
from shieldwall.assess.evaluation import (
    Case,
    campaign_cases,
    nested_cv,
    profiles_for,
    summarise,
)

TOP3_FLOOR = 0.45
GRID = (DEFAULT_WEIGHTS, Weights(0.5, 0.6, 2.0), Weights(0.25, 0.6, 1.0))


def _slice() -> list[Case]:
    catalog = attack_catalog()
    return (campaign_cases(catalog) + campaign_cases(catalog, with_software=True))[:30]


def test_campaign_slice_top3_floor_out_of_sample(monkeypatch) -> None:
    cases = _slice()
    assert len(cases) == 30
    calls: list[list[int]] = []
    real_choose = evaluation.choose_weights

    def spy(by_weights, train):  # record which cases vote for each held-out group
        calls.append(list(train))
        return real_choose(by_weights, train)

    monkeypatch.setattr(evaluation, "choose_weights", spy)
    outcomes, chosen, _ = nested_cv(cases, attack_catalog(), GRID)
    assert [o.case for o in outcomes] == cases
    assert set(chosen.values()) <= set(GRID)
    # One choice per held-out group (groups in sorted order, all one protocol family):
    # none of the voters shares a group with the cases it grades.
    groups = sorted({min(c.truth) for c in cases})
    assert len(calls) == len(groups)
    for gid, train in zip(groups, calls, strict=True):
        held = set().union(*(c.truth for c in cases if min(c.truth) == gid))
        assert train and not any(cases[i].truth & held for i in train), gid
    metrics = summarise(outcomes)["all"]
    assert metrics.rate(3) >= TOP3_FLOOR, metrics.top


def test_held_out_campaign_leaves_no_trace_in_the_profile() -> None:
    """Every feature left in the attributed group's profile has a source that is neither
    the campaign nor one of its reports, including what comes in through software."""
    catalog = attack_catalog()
    checked = 0
    for case in campaign_cases(catalog):
        c = catalog.campaigns[case.exclude_campaign]
        cites = set().union(*(u.citations for u in c.techniques.values()),
                            *(u.citations for u in c.software.values()))
        ps = profiles_for(case, catalog)
        for gid in case.truth:
            p = ps.profiles.get(gid)
            if p is None:
                continue
            g = catalog.groups[gid]
            sources = [(g.techniques, g.software)] + [
                (catalog.campaigns[o].techniques, catalog.campaigns[o].software)
                for o in g.campaigns if o != c.attack_id]
            for key in p.direct:
                uses = [src[0 if key.startswith("T") else 1].get(key) for src in sources]
                assert any(u is not None and not u.citations & cites for u in uses), key
            for key in p.features:
                if key in p.direct or any(parent_technique(t) == key for t in p.direct):
                    continue
                via = [catalog.software_uses.get(s, {}).get(key) for s in p.direct]
                via += [u for s in p.direct for t, u in catalog.software_uses.get(s, {}).items()
                        if parent_technique(t) == key]
                assert any(u is not None and not u.citations & cites for u in via), key
                checked += 1
    assert checked > 0


def test_report_with_software_names_what_the_report_documents_and_no_more() -> None:
    """The query's software is the group's software citing the report; the profile keeps
    none of what that report alone supports, for techniques and software alike."""
    catalog = attack_catalog()
    cases = evaluation.report_cases(catalog, with_software=True)
    plain = evaluation.report_cases(catalog)
    assert [c.evidence.techniques for c in cases] == [c.evidence.techniques for c in plain]
    assert any(c.evidence.software for c in cases)
    for case in cases[:40]:
        g = catalog.groups[case.exclude_group]
        r = case.exclude_report
        assert set(case.evidence.software) == {
            s for s, u in g.software.items() if r in u.citations}
        p = profiles_for(case, catalog).profiles.get(case.exclude_group)
        if p is None:
            continue
        sources = [(g.techniques, g.software)] + [
            (catalog.campaigns[c].techniques, catalog.campaigns[c].software)
            for c in g.campaigns]
        for key in p.direct:
            uses = [src[0 if key.startswith("T") else 1].get(key) for src in sources]
            assert any(u is not None and (u.citations - {r} or not (u.citations or u.truncated))
                       for u in uses), key


def test_known_behaviour_is_drawn_from_the_group_and_kept_out_of_all() -> None:
    catalog = attack_catalog()
    cases = evaluation.known_cases(catalog)
    assert {c.protocol for c in cases} == {
        "known-5", "known-5+noise", "known-10", "known-10+noise"}
    for case in cases:
        gid = min(case.truth)
        g = catalog.groups[gid]
        own = set(g.techniques).union(*(catalog.campaigns[c].techniques for c in g.campaigns))
        outside = [t for t in case.evidence.techniques if t not in own]
        size = int(case.protocol.split("-")[1].split("+")[0])
        if case.protocol.endswith("+noise"):
            assert 1 <= len(outside) <= round(size * evaluation.KNOWN_NOISE), case.name
        else:
            assert outside == [] and len(case.evidence.techniques) == size, case.name
    sample = [c for c in cases if c.protocol == "known-10+noise"][:5] + campaign_cases(
        catalog)[:3]
    table = summarise(evaluation.run(sample, catalog))
    assert table["all"].n == 3 and table["known-10+noise"].n == 5


def test_the_verdict_on_the_reference_ignores_what_was_not_held_out() -> None:
    """A high figure on in-profile queries must never be read as beating the reference."""
    from bench.attribution_eval import honest_reading

    def metrics(rate: float, n: int = 100) -> evaluation.Metrics:
        m = evaluation.Metrics()
        for i in range(n):
            m.add(1 if i < rate * n else None)
        return m

    held = {name: metrics(0.3) for name in
            ("campaign", "campaign+software", "report", "report+software", "split", "all")}
    inflated = {**held, "known-10+noise": metrics(0.95)}
    text = " ".join(honest_reading(inflated, inflated, 0.5, 0.1, [], []))
    assert "We do not beat it" in text and "We beat it" not in text
    better = {**inflated, "campaign+software": metrics(0.7)}
    assert "We beat it" in " ".join(honest_reading(better, inflated, 0.5, 0.1, [], []))
