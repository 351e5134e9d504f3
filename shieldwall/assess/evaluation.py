"""Held-out evaluation of attribution support on cases derived from ATT&CK itself.

Lives in the package (not only in `bench/`) because CI runs a slice of it and the
calibration that ships as data is fitted from it. Three protocols, each built so the
answer is never part of the profile it is ranked against:

- `campaign`: an ATT&CK campaign attributed to a group; its techniques are the query;
  the group's profile drops that campaign's relationships and any group relationship
  citing one of the campaign's reports. The closest thing to a real new incident.
- `report`: leave-one-report-out. A report (ATT&CK citation) that documents at least
  five techniques of a group is the query; the group's profile drops every relationship
  that report alone supports, and every relationship whose citations the packager cut
  off (we cannot tell which report those came from).
- `report+software`: the same held-out report, with the software the report names for
  the group (ATT&CK group-software relationships citing it) added to the query: a real
  report names its malware and tools, as an analyst's incident does.
- `split`: each group's techniques split 70/30 with a fixed seed; profiles hold the 70%
  and a query samples the 30%. The query's techniques are then *absent* from the right
  profile: only parent techniques and the group's software can still point at it. The
  hardest and least realistic protocol, kept as a lower bound.

One family is *not* held out and is reported apart, never in "all":

- `known-N`: N techniques sampled from a group's own documented behaviour, ranked
  against the full profiles; `known-N+noise` replaces a third of them with techniques
  drawn from the other groups' behaviour. It measures how well the profiles tell groups
  apart when an incident reuses documented behaviour (what technique matching can
  recognise at best), not whether the ranking generalises to a new report.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shieldwall.assess.actors import AttackCatalog, Use, attack_catalog
from shieldwall.assess.attribution import (
    DEFAULT_WEIGHTS,
    Evidence,
    ProfileSet,
    Weights,
    candidate_features,
    score_all,
)

MIN_REPORT_TECHNIQUES = 5
REPORTS_PER_GROUP = 2
SPLIT_TRAIN = 0.7
SPLIT_QUERY = 8
KNOWN_SIZES = (5, 10)
KNOWN_NOISE = 1 / 3
# Protocols whose query comes from the profile it is ranked against: reported apart.
IN_PROFILE = "known"


@dataclass
class Case:
    protocol: str
    name: str
    truth: frozenset[str]  # any of these groups is a correct answer
    evidence: Evidence
    profiles_key: str  # cases with the same key share one ProfileSet
    exclude_group: str = ""
    exclude_campaign: str = ""
    exclude_report: str = ""


@dataclass
class Outcome:
    case: Case
    ranking: list[tuple[str, float]]
    # The nested CV asks every outcome its rank once per held-out group: kept, not rescanned.
    _rank: int | None = field(default=None, init=False, repr=False, compare=False)
    _ranked: bool = field(default=False, init=False, repr=False, compare=False)

    def rank_of_truth(self) -> int | None:
        if not self._ranked:
            self._rank = next((i + 1 for i, (gid, _) in enumerate(self.ranking)
                               if gid in self.case.truth), None)
            self._ranked = True
        return self._rank


@dataclass
class Metrics:
    n: int = 0
    top: dict[int, int] = field(default_factory=lambda: {1: 0, 3: 0, 5: 0})
    rr: float = 0.0

    def add(self, rank: int | None) -> None:
        self.n += 1
        if rank is not None:
            for k in self.top:
                if rank <= k:
                    self.top[k] += 1
            self.rr += 1.0 / rank

    def rate(self, k: int) -> float:
        return self.top[k] / self.n if self.n else 0.0

    @property
    def mrr(self) -> float:
        return self.rr / self.n if self.n else 0.0


def _stable_rng(*parts: str) -> random.Random:
    seed = int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:16], 16)
    return random.Random(seed)


def campaign_cases(catalog: AttackCatalog, with_software: bool = False) -> list[Case]:
    out = []
    for cid, c in sorted(catalog.campaigns.items()):
        if not c.groups or len(c.techniques) < 3:
            continue
        if not any(catalog.groups[g].techniques for g in c.groups):
            continue
        sw = tuple(sorted(c.software)) if with_software else ()
        out.append(Case("campaign+software" if with_software else "campaign",
                        f"{cid} {c.name}", frozenset(c.groups),
                        Evidence(tuple(sorted(c.techniques)), sw),
                        f"campaign:{cid}", exclude_campaign=cid))
    return out


def report_cases(catalog: AttackCatalog, with_software: bool = False) -> list[Case]:
    """One case per large report of a group; with software, the query also names the
    software the report documents the group using (its group-software relationships that
    cite the report). The profile side is the same for both (see `profiles_for`)."""
    out = []
    for gid, g in sorted(catalog.groups.items()):
        by_report: dict[str, list[str]] = {}
        for tid, use in g.techniques.items():
            for cit in use.citations:
                by_report.setdefault(cit, []).append(tid)
        reports = sorted(
            (r for r, ts in by_report.items() if len(ts) >= MIN_REPORT_TECHNIQUES),
            key=lambda r: (-len(by_report[r]), r),
        )[:REPORTS_PER_GROUP]
        for r in reports:
            sw = tuple(sorted(s for s, u in g.software.items() if r in u.citations)
                       ) if with_software else ()
            out.append(Case("report+software" if with_software else "report",
                            f"{gid} minus '{r}'", frozenset({gid}),
                            Evidence(tuple(sorted(by_report[r])), sw), f"report:{gid}:{r}",
                            exclude_group=gid, exclude_report=r))
    return out


def split_training(catalog: AttackCatalog, seed: str = "shieldwall") -> tuple[
        dict[str, set[str]], dict[str, list[str]]]:
    """Per group: the ids kept in its profile and its held-out techniques."""
    keep: dict[str, set[str]] = {}
    held: dict[str, list[str]] = {}
    for gid, g in sorted(catalog.groups.items()):
        techniques = sorted(g.techniques)
        for cid in g.campaigns:
            techniques = sorted(set(techniques) | set(catalog.campaigns[cid].techniques))
        rng = _stable_rng(seed, gid)
        rng.shuffle(techniques)
        cut = math.ceil(len(techniques) * SPLIT_TRAIN)
        keep[gid] = set(techniques[:cut]) | set(g.software)
        for cid in g.campaigns:
            keep[gid] |= set(catalog.campaigns[cid].software)
        held[gid] = techniques[cut:]
    return keep, held


def split_cases(catalog: AttackCatalog, seed: str = "shieldwall") -> list[Case]:
    _, held = split_training(catalog, seed)
    out = []
    for gid, techniques in held.items():
        if len(techniques) < 4:
            continue
        rng = _stable_rng(seed, gid, "query")
        query = sorted(rng.sample(techniques, min(SPLIT_QUERY, len(techniques))))
        out.append(Case("split", f"{gid} held-out {len(query)}", frozenset({gid}),
                        Evidence(tuple(query)), f"split:{seed}"))
    return out


def known_cases(catalog: AttackCatalog, seed: str = "shieldwall") -> list[Case]:
    """Queries sampled from each group's own documented techniques (not held out)."""
    behaviour = {gid: sorted(set(g.techniques).union(
        *(catalog.campaigns[c].techniques for c in g.campaigns)))
        for gid, g in sorted(catalog.groups.items())}
    # Noise is drawn the way unrelated behaviour would show up: in proportion to how many
    # groups document each technique.
    pool = sorted(t for ts in behaviour.values() for t in ts)
    out = []
    for size in KNOWN_SIZES:
        for noisy in (False, True):
            for gid, techniques in behaviour.items():
                if len(techniques) < 2 * size:
                    continue
                rng = _stable_rng(seed, gid, str(size), str(noisy))
                query = rng.sample(techniques, size)
                if noisy:
                    own = set(techniques)
                    k = round(size * KNOWN_NOISE)
                    others = [t for t in pool if t not in own]
                    query = query[:size - k] + [rng.choice(others) for _ in range(k)]
                name = f"known-{size}" + ("+noise" if noisy else "")
                out.append(Case(name, f"{gid} {name}", frozenset({gid}),
                                Evidence(tuple(sorted(set(query)))), "known"))
    return out


def all_cases(catalog: AttackCatalog | None = None) -> list[Case]:
    catalog = catalog or attack_catalog()
    return (campaign_cases(catalog) + campaign_cases(catalog, with_software=True)
            + report_cases(catalog) + report_cases(catalog, with_software=True)
            + split_cases(catalog) + known_cases(catalog))


def profiles_for(case: Case, catalog: AttackCatalog,
                 weights: Weights = DEFAULT_WEIGHTS) -> ProfileSet:
    """The profiles a case is ranked against, without anything its own sources said.

    Besides the group's and campaign's relationships, the techniques ATT&CK records for
    a *software* are dropped when they cite a held-out report: otherwise a group that
    kept the malware (through another report) would get back, via the malware, the very
    behaviour the held-out report documented.
    """
    if case.protocol.startswith(IN_PROFILE):
        return ProfileSet.build(catalog, weights=weights)
    if case.protocol == "split":
        seed = case.profiles_key.split(":", 1)[1]
        keep, _ = split_training(catalog, seed)
        return ProfileSet.build(catalog, technique_filter=keep, weights=weights)
    if case.exclude_campaign:
        cid = case.exclude_campaign
        c = catalog.campaigns[cid]
        cites = set().union(*(u.citations for u in c.techniques.values()),
                            *(u.citations for u in c.software.values()))

        def exclude(gid: str, kind: str, use: Use, origin: str) -> bool:
            return origin == cid or bool(use.citations & cites)

        def exclude_sw(sid: str, use: Use) -> bool:
            return bool(use.citations & cites)

        return ProfileSet.build(catalog, exclude=exclude, exclude_software_use=exclude_sw,
                                weights=weights)
    report, target = case.exclude_report, case.exclude_group

    def exclude_report(gid: str, kind: str, use: Use, origin: str) -> bool:
        if gid != target:
            return False
        if not use.citations:
            return use.truncated  # unknown source: may be the held-out report
        return use.citations <= {report}

    def exclude_sw(sid: str, use: Use) -> bool:
        return report in use.citations

    return ProfileSet.build(catalog, exclude=exclude_report, exclude_software_use=exclude_sw,
                            weights=weights)


def run(cases: Sequence[Case], catalog: AttackCatalog | None = None,
        weights: Weights = DEFAULT_WEIGHTS) -> list[Outcome]:
    return run_grid(cases, catalog or attack_catalog(), [weights])[weights]


def summarise(outcomes: Iterable[Outcome]) -> dict[str, Metrics]:
    table: dict[str, Metrics] = {}
    for o in outcomes:
        rank = o.rank_of_truth()
        table.setdefault(o.case.protocol, Metrics()).add(rank)
        if not o.case.protocol.startswith(IN_PROFILE):
            table.setdefault("all", Metrics()).add(rank)
    return table


# ---- hyper-parameters chosen inside the cross-validation -----------------------------

WEIGHT_GRID: tuple[Weights, ...] = tuple(
    Weights(parent, software_technique, software, size_exponent)
    for parent in (0.25, 0.5, 1.0)
    for software_technique in (0.0, 0.3, 0.6)
    for software in (1.0, 2.0, 4.0)
    for size_exponent in (0.0, 0.25, 0.5)
)


def run_grid(cases: Sequence[Case], catalog: AttackCatalog,
             grid: Sequence[Weights]) -> dict[Weights, list[Outcome]]:
    """Every case under every weighting, in case order.

    A case's profiles depend only on its `profiles_key` and the profile-side weights
    (parent, software techniques), so cases sharing a key (a report with and without its
    software, every split or known-behaviour case) are ranked against one build; one key
    is held at a time, because a build is several MB and there are hundreds of keys.
    """
    by_profile: dict[tuple[float, float], list[Weights]] = {}
    for w in grid:
        by_profile.setdefault((w.parent, w.software_technique), []).append(w)
    by_key: dict[str, list[int]] = {}
    for i, case in enumerate(cases):
        by_key.setdefault(case.profiles_key, []).append(i)
    slots: dict[Weights, list[Outcome | None]] = {w: [None] * len(cases) for w in grid}
    for idx in by_key.values():
        for ws in by_profile.values():
            ps = profiles_for(cases[idx[0]], catalog, ws[0])
            for i in idx:
                for w in ws:
                    slots[w][i] = Outcome(cases[i], score_all(cases[i].evidence, ps, w))
    return {w: [o for o in outs if o is not None] for w, outs in slots.items()}


def _family(protocol: str) -> str:
    """Protocols that share their queries' sources vote together in the nested CV."""
    for family in ("campaign", "report", IN_PROFILE):
        if protocol.startswith(family):
            return family
    return protocol


def choose_weights(by_weights: dict[Weights, list[Outcome]], train: Sequence[int]) -> Weights:
    """The weighting with the best MRR on the training cases; the default wins ties,
    then the first in grid order."""
    def mrr(w: Weights) -> float:
        outs = by_weights[w]
        return sum(1.0 / r for i in train if (r := outs[i].rank_of_truth())) / max(1, len(train))

    best = DEFAULT_WEIGHTS
    best_mrr = mrr(best)
    for w in by_weights:
        m = mrr(w)
        if m > best_mrr + 1e-12:
            best, best_mrr = w, m
    return best


def nested_cv(cases: Sequence[Case], catalog: AttackCatalog | None = None,
              grid: Sequence[Weights] = WEIGHT_GRID,
              precomputed: dict[Weights, list[Outcome]] | None = None) -> tuple[
                  list[Outcome], dict[str, Weights], dict[Weights, list[Outcome]]]:
    """Leave-one-group-out: each case is ranked with weights chosen without its group.

    For every group, the weights are picked on the cases of the same protocol family
    (campaign, report, split) whose answer shares no group with it, so neither the case
    nor a sibling case of the same actor ever votes for the weights that grade it.
    Returns the outcomes in case order, the weights chosen per held-out group, and the
    outcomes of every case under every weighting (to choose the shipped weights from).
    `precomputed` (outcomes of a larger grid) avoids ranking the cases again.
    """
    catalog = catalog or attack_catalog()
    weightings = list(dict.fromkeys((DEFAULT_WEIGHTS, *grid)))
    if precomputed is not None and all(w in precomputed for w in weightings):
        by_weights = {w: precomputed[w] for w in weightings}
    else:
        by_weights = run_grid(cases, catalog, weightings)
    out: list[Outcome | None] = [None] * len(cases)
    chosen: dict[str, Weights] = {}
    for family in sorted({_family(c.protocol) for c in cases}):
        idx = [i for i, c in enumerate(cases) if _family(c.protocol) == family]
        for gid in sorted({min(cases[i].truth) for i in idx}):
            test = [i for i in idx if min(cases[i].truth) == gid]
            held = frozenset().union(*(cases[i].truth for i in test))
            train = [i for i in idx if not cases[i].truth & held]
            w = choose_weights(by_weights, train)
            chosen[f"{family}:{gid}"] = w
            for i in test:
                out[i] = by_weights[w][i]
    return [o for o in out if o is not None], chosen, by_weights


# ---- calibration -------------------------------------------------------------------------


def calibration_rows(outcomes: Iterable[Outcome], top: int = 5) -> list[
        tuple[tuple[float, float, float], int, str]]:
    """(features, label, group-of-case) for the top candidates of each case."""
    rows = []
    for o in outcomes:
        values = [s for _, s in o.ranking]
        for i, (gid, _) in enumerate(o.ranking[:top]):
            s, margin = candidate_features(values, i)
            label = 1 if gid in o.case.truth else 0
            rows.append(((s, margin, math.log1p(o.case.evidence.size)), label,
                         min(o.case.truth)))
    return rows


def fit_logistic(rows: Sequence[tuple[tuple[float, float, float], int, str]],
                 l2: float = 1e-3, iterations: int = 50) -> tuple[float, ...]:
    """Platt-style logistic regression by Newton's method; four weights need no library."""
    w = [0.0, 0.0, 0.0, 0.0]
    for _ in range(iterations):
        grad = [0.0] * 4
        hess = [[0.0] * 4 for _ in range(4)]
        for feats, y, _ in rows:
            x = (1.0, *feats)
            z = sum(wi * xi for wi, xi in zip(w, x, strict=True))
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            for a in range(4):
                grad[a] += (p - y) * x[a]
                for b in range(4):
                    hess[a][b] += p * (1 - p) * x[a] * x[b]
        for a in range(4):
            grad[a] += l2 * w[a]
            hess[a][a] += l2
        step = _solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-8:
            break
    return tuple(w)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


CALIBRATION_L2 = (0.001, 0.1, 1.0, 3.0, 10.0)
Row = tuple[tuple[float, float, float], int, str]


def _half(group: str, salt: str = "") -> int:
    return int(hashlib.sha256((salt + group).encode()).hexdigest(), 16) % 2


def _log_loss(coef: Sequence[float], rows: Sequence[Row]) -> float:
    eps = 1e-9
    return -sum(math.log(max(eps, _p(coef, f) if y else 1.0 - _p(coef, f)))
                for f, y, _ in rows)


def fit_logistic_cv(rows: Sequence[Row],
                    grid: Sequence[float] = CALIBRATION_L2) -> tuple[tuple[float, ...], float]:
    """The calibrator with its L2 strength chosen by 2-fold cross-validation by group
    (log loss) inside the rows given: with ~40 cases an unregularised fit is
    over-confident out of sample, and how much to shrink must not be read off the cases
    the calibration is then judged on."""
    folds: dict[int, list[Row]] = {0: [], 1: []}
    for row in rows:
        folds[_half(row[2], "inner:")].append(row)
    best, best_loss = grid[0], math.inf
    for l2 in grid:
        loss = 0.0
        for k in (0, 1):
            if folds[k] and folds[1 - k]:
                loss += _log_loss(fit_logistic(folds[1 - k], l2=l2), folds[k])
        if loss < best_loss - 1e-12:
            best, best_loss = l2, loss
    return fit_logistic(rows, l2=best), best


def _p(coef: Sequence[float], feats: Sequence[float]) -> float:
    z = coef[0] + sum(c * f for c, f in zip(coef[1:], feats, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
