"""Fitting and judging the attribution confidence (issue 15: no band over-confident).

The confidence `attribution.Calibration` ships is two maps in a row:

1. a logistic (Platt) map of a candidate's score, margin and evidence size
   (`evaluation.fit_logistic_cv`), which ranks candidates well but, fitted on ATT&CK's
   few held-out campaigns, is over-confident out of sample above ~0.2;
2. a non-decreasing step map of the logistic value (`fit_steps`), fitted on logistic
   values the first map made for groups it did not see (two halves of the training
   groups, each predicted by a fit on the other): pool adjacent violators finds the
   steps, and each step's value is a lower bound of its rate, the `QUANTILE` quantile of
   its Beta posterior under a prior of `PRIOR_STRENGTH` pseudo-cases at the base rate.
   A step holding few cases cannot be confidently high: two right of two is a rate of
   1.0 but a value of ~0.4.

`judge` grades a way of fitting it honestly: the groups are split into folds, each fold's
candidates are predicted by a fit that never saw its groups, and the predictions are
binned in bands of 0.1 (mean predicted against observed); a band over-confident by more
than `OVERCONFIDENT` fails, whatever its size. bench/attribution_eval.py and
bench/attribution_temporal.py print it; docs/benchmarks.md holds the figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from shieldwall.assess.attribution import candidate_features, step_value
from shieldwall.assess.evaluation import Outcome, Row, _half, _p, calibration_rows, fit_logistic_cv

PRIOR_STRENGTH = 5.0  # pseudo-cases at the base rate added to each step
QUANTILE = 0.2  # each step shows a rate the data make 80% sure is not lower
OVERCONFIDENT = 0.1  # a band whose mean prediction exceeds its observed rate by more fails
INNER_SALT = "iso:"  # the split of a training set's groups for the second stage

Steps = tuple[tuple[float, float], ...]
Predictor = Callable[[tuple[float, float, float]], float]


def pav(points: Iterable[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Weighted isotonic regression (pool adjacent violators) of (x, value, weight).

    Returns blocks (highest x, weighted sum of values, total weight), ascending in x and
    in mean value."""
    blocks: list[list[float]] = []
    for x, v, w in sorted(points):
        blocks.append([x, v * w, w])
        while len(blocks) > 1 and blocks[-2][1] * blocks[-1][2] >= blocks[-1][1] * blocks[-2][2]:
            x2, s2, w2 = blocks.pop()
            blocks[-1][0] = x2
            blocks[-1][1] += s2
            blocks[-1][2] += w2
    return [(x, s, w) for x, s, w in blocks]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularised incomplete beta I_x(a, b): P(X <= x) for X ~ Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """x with P(X <= x) = q for X ~ Beta(a, b), by bisection (to 1e-10)."""
    lo, hi = 0.0, 1.0
    while hi - lo > 1e-10:
        mid = (lo + hi) / 2
        if beta_cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def fit_steps(pairs: Sequence[tuple[float, int]], prior_strength: float = PRIOR_STRENGTH,
              quantile: float | None = QUANTILE, min_count: int = 1) -> Steps:
    """The second stage from (first-stage probability, outcome) pairs of unseen groups.

    Steps by pool adjacent violators; each step's value is the `quantile` of the Beta
    posterior of its rate, Beta(right + k * base, wrong + k * (1 - base)) with k =
    `prior_strength` and base the pairs' overall rate; pooled again where that broke the
    order, so the map stays non-decreasing. The variants the benchmark weighs: `quantile`
    None takes the posterior mean (shrinkage alone; with k = 0, plain isotonic
    regression), and a step of fewer than `min_count` cases joins its lower neighbour."""
    if not pairs:
        return ()
    base = sum(y for _, y in pairs) / len(pairs)
    k = prior_strength
    blocks = pav((p, float(y), 1.0) for p, y in pairs)
    while min_count > 1 and len(blocks) > 1 and min(w for _, _, w in blocks) < min_count:
        i = next(i for i, (_, _, w) in enumerate(blocks) if w < min_count)
        j = max(i - 1, 0)
        (_, s1, w1), (x2, s2, w2) = blocks[j], blocks[j + 1]
        blocks[j:j + 2] = [(x2, s1 + s2, w1 + w2)]
    bounded = []
    for upper, right, n in blocks:
        a = right + k * base
        b = n - right + k * (1.0 - base)
        value = (a / (a + b) if a + b > 0 else base) if quantile is None else \
            beta_quantile(quantile, max(a, 1e-9), max(b, 1e-9))
        bounded.append((upper, value, n))
    return tuple((upper, s / w) for upper, s, w in pav(bounded))


@dataclass(frozen=True)
class TwoStage:
    """The shipped kind of calibration: logistic coefficients and the step map."""

    coef: tuple[float, ...]
    l2: float
    steps: Steps

    def __call__(self, feats: tuple[float, float, float]) -> float:
        p = _p(self.coef, feats)
        return step_value(self.steps, p) if self.steps else p


def fit_platt(rows: Sequence[Row]) -> TwoStage:
    """The first stage alone (what shipped before issue 15's calibration work)."""
    coef, l2 = fit_logistic_cv(rows)
    return TwoStage(coef, l2, ())


def fit_two_stage(rows: Sequence[Row], prior_strength: float = PRIOR_STRENGTH,
                  quantile: float | None = QUANTILE, min_count: int = 1) -> TwoStage:
    """Logistic map on every row; step map on the logistic values each half of the
    groups got from a logistic fit on the other half."""
    coef, l2 = fit_logistic_cv(rows)
    unseen: list[tuple[float, int]] = []
    for k in (0, 1):
        train = [r for r in rows if _half(r[2], INNER_SALT) != k]
        test = [r for r in rows if _half(r[2], INNER_SALT) == k]
        if train and test:
            inner, _ = fit_logistic_cv(train)
            unseen += [(_p(inner, f), y) for f, y, _ in test]
    return TwoStage(coef, l2, fit_steps(unseen, prior_strength, quantile, min_count))


@dataclass
class Judgement:
    """Cross-fitted calibration of one way of fitting, on one set of rankings."""

    brier: float
    ece: float
    bands: list[tuple[float, float, int]]  # (mean predicted, observed rate, count)
    highest: float  # the highest confidence given to any candidate
    confident_share: float  # rankings whose top candidate reached the verdict threshold
    confident_precision: float  # of those, the share where it was right

    @property
    def over(self) -> list[tuple[float, float, int]]:
        return [b for b in self.bands if b[0] - b[1] > OVERCONFIDENT]

    @property
    def worst(self) -> float:
        return max(mp - obs for mp, obs, _ in self.bands)

    def band_text(self, arrow: str = "→") -> str:
        return ", ".join(f"{mp:.2f}{arrow}{obs:.2f} (n={n})" for mp, obs, n in self.bands)


def bands(preds: Sequence[tuple[float, int]]) -> tuple[list[tuple[float, float, int]], float]:
    """Bands of 0.1 (the last one closed at 1.0), every band with a case; and the ECE."""
    out = []
    ece = 0.0
    for lo in [i / 10 for i in range(10)]:
        inside = [(p, y) for p, y in preds if lo <= p < lo + 0.1 or (lo == 0.9 and p == 1.0)]
        if inside:
            mp = sum(p for p, _ in inside) / len(inside)
            obs = sum(y for _, y in inside) / len(inside)
            out.append((mp, obs, len(inside)))
            ece += len(inside) / len(preds) * abs(mp - obs)
    return out, ece


def judge(outcomes: Sequence[Outcome], fit: Callable[[Sequence[Row]], Predictor],
          folds: str = "halves", fit_on: Callable[[Outcome], bool] | None = None,
          threshold: float = 0.5, salt: str = "") -> Judgement:
    """Cross-fitted: each fold's candidates (the top five of each ranking) are predicted
    by `fit` on the other folds' rankings (those `fit_on` accepts; all by default), so
    no fit sees the groups it is graded on. `folds`: "halves" (two halves of the groups)
    or "groups" (one fold per group: each fit sees every
    other group, nearly the data the shipped fit sees). `salt` draws another split into
    halves (the benchmark's robustness check; "" is the split every figure uses)."""
    def key(o: Outcome) -> str | int:
        g = min(o.case.truth)
        return _half(g, salt) if folds == "halves" else g

    keys = sorted({key(o) for o in outcomes}, key=str)
    preds: list[tuple[float, int]] = []
    confident = right = 0
    for k in keys:
        train = [r for o in outcomes if key(o) != k and (fit_on is None or fit_on(o))
                 for r in calibration_rows([o])]
        predictor = fit(train)
        for o in outcomes:
            if key(o) != k:
                continue
            preds += [(predictor(f), y) for f, y, _ in calibration_rows([o])]
            if o.ranking:
                s, margin = candidate_features([s for _, s in o.ranking], 0)
                if predictor((s, margin, math.log1p(o.case.evidence.size))) >= threshold:
                    confident += 1
                    right += o.ranking[0][0] in o.case.truth
    binned, ece = bands(preds)
    return Judgement(sum((p - y) ** 2 for p, y in preds) / len(preds), ece, binned,
                     max(p for p, _ in preds), confident / len(outcomes) if outcomes else 0.0,
                     right / confident if confident else 0.0)
