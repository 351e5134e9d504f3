"""Confirmed cases as attribution evidence, measured with a temporal protocol (issue 15).

    .venv/bin/python bench/attribution_temporal.py

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
the shipped ones. Then the calibration: the confidence of each ranking's top five against
whether it was right, by band of 0.1 (as `evaluation.cross_fitted` bins), with every band
over-confident by more than 0.1 flagged; and the cross-fitted table (fit on half the
groups, judged on the other half) when the temporal cases join the campaign cases.
ATT&CK carries no infrastructure, so what a confirmed case's infrastructure adds is not
graded here (tests/assess/test_confirmed_cases.py shows it at work).
"""

from __future__ import annotations

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
from shieldwall.assess.evaluation import (  # noqa: E402
    Case,
    Metrics,
    Outcome,
    _half,
    _p,
    calibration_rows,
    campaign_cases,
    cross_fitted,
    fit_logistic_cv,
    run,
)

ARMS = ("attack-only", "+confirmed", "attack-has-them")
MIN_TECHNIQUES = 3
OVERCONFIDENT = 0.1


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


def bands(outs: Sequence[Outcome], top: int = 5) -> list[tuple[float, float, float, int]]:
    """(band start, mean shipped confidence, observed rate, n) over each ranking's top."""
    cal = load_calibration()
    rows: list[tuple[float, int]] = []
    for o in outs:
        values = [s for _, s in o.ranking]
        for i, (gid, _) in enumerate(o.ranking[:top]):
            s, margin = candidate_features(values, i)
            rows.append((cal.probability(s, margin, o.case.evidence.size),
                         int(gid in o.case.truth)))
    out = []
    for lo in [i / 10 for i in range(10)]:
        inside = [(p, y) for p, y in rows if lo <= p < lo + 0.1 or (lo == 0.9 and p == 1.0)]
        if inside:
            out.append((lo, sum(p for p, _ in inside) / len(inside),
                        sum(y for _, y in inside) / len(inside), len(inside)))
    return out


def _pav(pairs: Sequence[tuple[float, int]]) -> list[tuple[float, float]]:
    """Isotonic regression (pool adjacent violators): (upper predicted, observed) steps."""
    blocks: list[list[float]] = []  # [sum of labels, count, highest prediction]
    for p, y in sorted(pairs):
        blocks.append([float(y), 1.0, p])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            y2, n2, p2 = blocks.pop()
            blocks[-1][0] += y2
            blocks[-1][1] += n2
            blocks[-1][2] = p2
    return [(b[2], b[0] / b[1]) for b in blocks]


def _step(steps: Sequence[tuple[float, float]], p: float) -> float:
    return next((v for hi, v in steps if p <= hi), steps[-1][1])


def two_stage(outs: Sequence[Outcome]) -> tuple[float, list[tuple[float, float, int]]]:
    """Tried, not shipped: the Platt map followed by an isotonic map fitted on the Platt
    predictions of held-out groups, judged cross-fitted twice over (outer halves as
    `cross_fitted`; inside each training half, the isotonic map learns from Platt
    predictions made on groups the Platt fit did not see). Brier and bins."""
    rows = calibration_rows(outs)
    preds: list[tuple[float, int]] = []
    for fold in (0, 1):
        train = [r for r in rows if _half(r[2]) != fold]
        inner: list[tuple[float, int]] = []
        for k in (0, 1):
            coef, _ = fit_logistic_cv([r for r in train if _half(r[2], "iso:") != k])
            inner += [(_p(coef, f), y) for f, y, g in train if _half(g, "iso:") == k]
        steps = _pav(inner)
        coef, _ = fit_logistic_cv(train)
        preds += [(_step(steps, _p(coef, f)), y) for f, y, g in rows if _half(g) == fold]
    bins = []
    for lo in [i / 10 for i in range(10)]:
        inside = [(p, y) for p, y in preds if lo <= p < lo + 0.1 or (lo == 0.9 and p == 1.0)]
        if inside:
            bins.append((sum(p for p, _ in inside) / len(inside),
                         sum(y for _, y in inside) / len(inside), len(inside)))
    return sum((p - y) ** 2 for p, y in preds) / len(preds), bins


def metrics(outs: Sequence[Outcome]) -> Metrics:
    m = Metrics()
    for o in outs:
        m.add(o.rank_of_truth())
    return m


def main() -> None:
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
        over = [(lo, mp, obs, n) for lo, mp, obs, n in rows if mp - obs > OVERCONFIDENT]
        if arm.startswith("+confirmed"):
            worst = max([worst, *(mp - obs for _, mp, obs, _ in rows)])
        print(f"  {arm}: " + ", ".join(f"{mp:.2f}->{obs:.2f} (n={n})"
                                        for _, mp, obs, n in rows)
              + (f"; OVER-CONFIDENT by >{OVERCONFIDENT}: "
                 + ", ".join(f"{mp:.2f}->{obs:.2f}" for _, mp, obs, _ in over)
                 if over else "; no band over-confident by more than 0.1"))
    print(f"  largest over-confidence of a band with confirmed cases: {worst:+.2f}")
    camp = run(campaign_cases(catalog) + campaign_cases(catalog, with_software=True),
               catalog, load_calibration().weights)
    # Recalibrated the way the shipped calibration is made (Platt, L2 by inner CV), and
    # judged cross-fitted: fit on half the groups, graded on the other half.
    for label, extra in (("campaign cases alone", []),
                         ("with the temporal attack-only rankings",
                          [*by_arm["attack-only"], *by_arm["attack-only+software"]]),
                         ("with the temporal +confirmed rankings",
                          [*by_arm["+confirmed"], *by_arm["+confirmed+software"]])):
        pooled = [*camp, *extra]
        rep = cross_fitted(pooled)
        over = [f"{mp:.2f}->{obs:.2f}" for mp, obs, _ in rep.bins if mp - obs > OVERCONFIDENT]
        print(f"cross-fitted, {label} ({len(pooled)} rankings): Brier {rep.brier:.4f}, "
              f"ECE {rep.ece:.4f}; " + ", ".join(
                  f"{mp:.2f}->{obs:.2f} (n={n})" for mp, obs, n in rep.bins)
              + f"; over-confident by >{OVERCONFIDENT}: {', '.join(over) or 'none'}")
        brier, bins = two_stage(pooled)
        over = [f"{mp:.2f}->{obs:.2f}" for mp, obs, _ in bins if mp - obs > OVERCONFIDENT]
        print(f"  two-stage (Platt, then isotonic; not shipped): Brier {brier:.4f}; "
              + ", ".join(f"{mp:.2f}->{obs:.2f} (n={n})" for mp, obs, n in bins)
              + f"; over-confident by >{OVERCONFIDENT}: {', '.join(over) or 'none'}")
    print(f"{len(cases)} groups, {sum(len(v) for v in by_arm.values())} rankings in "
          f"{elapsed:.1f} s on {platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    assert math.isfinite(worst)


if __name__ == "__main__":
    main()
