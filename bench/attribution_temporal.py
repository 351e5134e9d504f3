"""Confirmed cases as attribution evidence, measured with a temporal protocol (issue 15).

    .venv/bin/python bench/attribution_temporal.py [--designs]

For every ATT&CK group with several attributed campaigns (ATT&CK `campaign` objects with
`first_seen`, from the packaged data), the latest campaign is the new incident and the
earlier ones are the alliance's confirmed cases of that group. The profiles never hold the
latest campaign (its relationships and every relationship citing its reports are dropped,
as the held-out campaign protocol does), and, so that the alliance knows something ATT&CK
does not, the earlier campaigns are dropped from ATT&CK the same way. Three rankings of
the latest campaign:

- `attack-only`: the profiles without any of the group's campaigns;
- `+confirmed`: the same profiles plus the earlier campaigns as confirmed cases
  (`ProfileSet.build(confirmed=...)`, what `assess.confirmed` reads from the store);
- `attack-has-them` (reference): the earlier campaigns inside ATT&CK, as the held-out
  campaign protocol ranks the latest one.

Each with techniques alone and with the campaign's software. Weights and confidence are
the shipped ones. Then the calibration: the shipped confidence of each ranking's top five
against whether it was right, by band of 0.1, with every band over-confident by more than
0.1 flagged; and the cross-fitted judgement (`assess.calibration.judge`: no fit sees the
groups it is graded on) of the logistic map alone and of the shipped two-stage
confidence, fitted as shipped (on campaign cases) and graded on the campaign cases, then
on them with the temporal attack-only or +confirmed rankings. `--designs` also weighs the
second stage's variants (plain isotonic, shrinkage toward the base rate, minimum step
sizes, lower bounds) on the same judgements and on 40 other splits of the groups.
ATT&CK carries no infrastructure, so what a confirmed case's infrastructure adds is not
graded here (tests/assess/test_confirmed_cases.py shows it at work).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shieldwall.assess.actors import ATTACK_VERSION, AttackCatalog, Use, attack_catalog  # noqa: E402
from shieldwall.assess.attribution import (  # noqa: E402
    Evidence,
    ProfileSet,
    candidate_features,
    load_calibration,
    score_all,
)
from shieldwall.assess.calibration import (  # noqa: E402
    OVERCONFIDENT,
    fit_platt,
    fit_two_stage,
    judge,
)
from shieldwall.assess.calibration import bands as probability_bands  # noqa: E402
from shieldwall.assess.evaluation import (  # noqa: E402
    Case,
    Metrics,
    Outcome,
    campaign_cases,
    run,
)

ARMS = ("attack-only", "+confirmed", "attack-has-them")
MIN_TECHNIQUES = 3


@dataclass
class Temporal:
    group: str
    latest: str
    earlier: tuple[str, ...]


def temporal_cases(catalog: AttackCatalog) -> list[Temporal]:
    """Groups with at least two dated campaigns; the latest (with enough techniques to
    rank on) is the query."""
    out = []
    for gid in sorted(catalog.groups):
        camps = sorted((c.first_seen or "", cid) for cid, c in catalog.campaigns.items()
                       if gid in c.groups and c.first_seen)
        if len(camps) < 2 or len(catalog.campaigns[camps[-1][1]].techniques) < MIN_TECHNIQUES:
            continue
        out.append(Temporal(gid, camps[-1][1], tuple(cid for _, cid in camps[:-1])))
    return out


def _cites(catalog: AttackCatalog, cids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for cid in cids:
        c = catalog.campaigns[cid]
        for use in (*c.techniques.values(), *c.software.values()):
            out |= use.citations
    return out


def profiles(catalog: AttackCatalog, held: Sequence[str],
             confirmed: dict[str, Evidence] | None = None) -> ProfileSet:
    """ATT&CK without the campaigns `held` (their relationships, and every relationship
    citing their reports, software's too), plus `confirmed`."""
    cites = _cites(catalog, held)
    held_set = set(held)

    def exclude(gid: str, kind: str, use: Use, origin: str) -> bool:
        return origin in held_set or bool(use.citations & cites)

    def exclude_sw(sid: str, use: Use) -> bool:
        return bool(use.citations & cites)

    return ProfileSet.build(catalog, exclude=exclude, exclude_software_use=exclude_sw,
                            weights=load_calibration().weights, confirmed=confirmed)


def campaign_evidence(catalog: AttackCatalog, cids: Sequence[str]) -> Evidence:
    t: list[str] = []
    s: list[str] = []
    for cid in cids:
        c = catalog.campaigns[cid]
        t += sorted(c.techniques)
        s += sorted(c.software)
    return Evidence(tuple(dict.fromkeys(t)), tuple(dict.fromkeys(s)))


def outcomes(catalog: AttackCatalog, cases: list[Temporal]) -> dict[str, list[Outcome]]:
    out: dict[str, list[Outcome]] = {}
    for tc in cases:
        latest = catalog.campaigns[tc.latest]
        confirmed = {tc.group: campaign_evidence(catalog, tc.earlier)}
        sets = {
            "attack-only": profiles(catalog, (tc.latest, *tc.earlier)),
            "+confirmed": profiles(catalog, (tc.latest, *tc.earlier), confirmed),
            "attack-has-them": profiles(catalog, (tc.latest,)),
        }
        for software in (False, True):
            ev = Evidence(tuple(sorted(latest.techniques)),
                          tuple(sorted(latest.software)) if software else ())
            for arm, ps in sets.items():
                name = arm + ("+software" if software else "")
                case = Case(name, f"{tc.latest} {latest.name}", frozenset(latest.groups), ev,
                            f"temporal:{tc.latest}", exclude_campaign=tc.latest)
                out.setdefault(name, []).append(Outcome(case, score_all(ev, ps)))
    return out


def bands(outs: Sequence[Outcome], top: int = 5) -> list[tuple[float, float, int]]:
    """(mean shipped confidence, observed rate, n) by band over each ranking's top."""
    cal = load_calibration()
    rows: list[tuple[float, int]] = []
    for o in outs:
        values = [s for _, s in o.ranking]
        for i, (gid, _) in enumerate(o.ranking[:top]):
            s, margin = candidate_features(values, i)
            rows.append((cal.probability(s, margin, o.case.evidence.size),
                         int(gid in o.case.truth)))
    return probability_bands(rows)[0]


# The second stage's variants weighed with --designs: (prior strength, quantile or None
# for the posterior mean, minimum cases per step). The shipped one is (5, 0.2, 1).
DESIGNS = {
    "isotonic": (0.0, None, 1),
    "isotonic, steps of >= 10": (0.0, None, 10),
    "shrunk to the base rate, k=5": (5.0, None, 1),
    "shrunk, k=10": (10.0, None, 1),
    "shrunk, k=20": (20.0, None, 1),
    "shrunk, k=10, steps of >= 20": (10.0, None, 20),
    "lower bound 0.2 (uniform prior)": (0.0, 0.2, 1),
    "lower bound 0.2, steps of >= 10": (0.0, 0.2, 10),
    "lower bound 0.1, steps of >= 10": (0.0, 0.1, 10),
    "lower bound 0.2 of k=2": (2.0, 0.2, 1),
    "lower bound 0.2 of k=5 (shipped)": (5.0, 0.2, 1),
    "lower bound 0.3 of k=5": (5.0, 0.3, 1),
    "lower bound 0.2 of k=10": (10.0, 0.2, 1),
    "lower bound 0.5 of k=10": (10.0, 0.5, 1),
}
SPLITS = 40


def pools(catalog: AttackCatalog, by_arm: dict[str, list[Outcome]]
          ) -> tuple[dict[str, list[Outcome]], set[int]]:
    """The rankings judged: campaign cases alone, and with each temporal arm; and the
    ids of the campaign rankings, the only ones a fit learns from (as shipped)."""
    camp = run(campaign_cases(catalog) + campaign_cases(catalog, with_software=True),
               catalog, load_calibration().weights)
    return {"campaign cases": camp,
            "with temporal attack-only": [*camp, *by_arm["attack-only"],
                                          *by_arm["attack-only+software"]],
            "with temporal +confirmed": [*camp, *by_arm["+confirmed"],
                                         *by_arm["+confirmed+software"]]}, {id(o) for o in camp}


def designs(by_pool: dict[str, list[Outcome]], fit_ids: set[int]) -> None:
    """Each variant: worst band (mean predicted - observed), Brier and highest confidence
    under both judgements on every pool, and on how many of SPLITS other random splits
    into halves some pool has a band over-confident by more than OVERCONFIDENT."""
    def on_campaign(o: Outcome) -> bool:
        return id(o) in fit_ids

    variants = {"logistic alone": fit_platt} | {
        name: (lambda rows, d=d: fit_two_stage(rows, *d)) for name, d in DESIGNS.items()}
    print("| second stage | judgement | campaign | +attack-only | +confirmed | failing "
          f"splits of {SPLITS} |")
    print("|---|---|---|---|---|---:|")
    for name, fit in variants.items():
        failing = sum(any(judge(outs, fit, "halves", on_campaign, salt=f"s{i}:").worst
                          > OVERCONFIDENT for outs in by_pool.values())
                      for i in range(SPLITS))
        for folds in ("halves", "groups"):
            cells = []
            for outs in by_pool.values():
                j = judge(outs, fit, folds, on_campaign)
                cells.append(f"worst {j.worst:+.2f}, Brier {j.brier:.4f}, max {j.highest:.2f}")
            print(f"| {name} | {folds} | " + " | ".join(cells)
                  + f" | {failing if folds == 'halves' else ''} |")


def metrics(outs: Sequence[Outcome]) -> Metrics:
    m = Metrics()
    for o in outs:
        m.add(o.rank_of_truth())
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--designs", action="store_true",
                    help="also weigh the second stage's variants (a few minutes)")
    args = ap.parse_args()
    start = time.perf_counter()
    catalog = attack_catalog()
    cases = temporal_cases(catalog)
    by_arm = outcomes(catalog, cases)
    elapsed = time.perf_counter() - start
    print(f"temporal cases (ATT&CK {ATTACK_VERSION}): "
          + ", ".join(f"{t.group}: {'+'.join(t.earlier)} -> {t.latest}" for t in cases))
    print("| protocol | cases | top-1 | top-3 | top-5 | MRR |")
    print("|---|---:|---:|---:|---:|---:|")
    for sw in ("", "+software"):
        for arm in ARMS:
            m = metrics(by_arm[arm + sw])
            print(f"| temporal {arm}{sw} | {m.n} | {m.rate(1):.1%} | {m.rate(3):.1%} | "
                  f"{m.rate(5):.1%} | {m.mrr:.3f} |")
    for tc in cases:
        ranks = {name: next(o.rank_of_truth() for o in outs if o.case.name.startswith(
            tc.latest)) for name, outs in by_arm.items()}
        print(f"  {tc.group} {tc.latest}: " + ", ".join(
            f"{k} {v if v is not None else '-'}" for k, v in ranks.items()))
    print("calibration of the shipped confidence on the temporal rankings' top five "
          "(band: mean predicted -> observed, n):")
    worst = 0.0
    for arm in ("+confirmed", "+confirmed+software", "attack-only", "attack-only+software"):
        rows = bands(by_arm[arm])
        over = [(mp, obs, n) for mp, obs, n in rows if mp - obs > OVERCONFIDENT]
        if arm.startswith("+confirmed"):
            worst = max([worst, *(mp - obs for mp, obs, _ in rows)])
        print(f"  {arm}: " + ", ".join(f"{mp:.2f}->{obs:.2f} (n={n})" for mp, obs, n in rows)
              + (f"; OVER-CONFIDENT by >{OVERCONFIDENT}: "
                 + ", ".join(f"{mp:.2f}->{obs:.2f}" for mp, obs, _ in over)
                 if over else "; no band over-confident by more than 0.1"))
    print(f"  largest over-confidence of a band with confirmed cases: {worst:+.2f}")
    by_pool, fit_ids = pools(catalog, by_arm)
    # Judged cross-fitted as shipped: fit on campaign cases (of the groups not graded),
    # graded on every ranking of the pool whose group the fit did not see.
    labels = {"halves": "fit on half the groups, judged on the other half",
              "groups": "fit on all groups but one, judged on that one"}
    for label, outs in by_pool.items():
        for name, fit in (("logistic alone", fit_platt), ("shipped", fit_two_stage)):
            for folds, text in labels.items():
                j = judge(outs, fit, folds, lambda o: id(o) in fit_ids)
                over = ", ".join(f"{mp:.2f}->{obs:.2f} (n={n})" for mp, obs, n in j.over)
                print(f"cross-fitted, {label} ({len(outs)} rankings), {name}, {text}: "
                      f"Brier {j.brier:.4f}, ECE {j.ece:.4f}; {j.band_text('->')}; "
                      f"over-confident by >{OVERCONFIDENT}: {over or 'none'}; highest "
                      f"{j.highest:.2f}; top candidate >= 0.5 in {j.confident_share:.1%}")
    if args.designs:
        designs(by_pool, fit_ids)
    print(f"{len(cases)} groups, {sum(len(v) for v in by_arm.values())} rankings in "
          f"{elapsed:.1f} s on {platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    assert math.isfinite(worst)


if __name__ == "__main__":
    main()
