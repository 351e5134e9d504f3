"""Attribution support: which known intrusion sets does the observed behaviour resemble?

This never says who did it. It ranks ATT&CK groups by how well their documented
behaviour covers what was observed, with rare techniques counting for more than the
ubiquitous ones every actor uses (IDF over groups), shows what each candidate shares
with the observation and what it would usually also show, and turns the score margin
into a calibrated probability fitted on held-out cases (`bench/attribution_eval.py`).
When that probability is low, or the evidence is thin, the answer is "no confident
attribution": most incidents seen by a single member are exactly that.

Model (docs/benchmarks.md): each group is a set of weighted features (its techniques,
their parent techniques, the software it uses, and the techniques of that software);
the observation is a set of IDF-weighted features; the score is the share of the
observation's weight the group explains. The feature weights (`Weights`) ship in the
calibration file, chosen on held-out ATT&CK campaigns; the benchmark re-chooses them
inside a leave-one-group-out cross-validation so that its figures stay out of sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from shieldwall.assess.actors import (
    AttackCatalog,
    Use,
    actor_type,
    attack_catalog,
    parent_technique,
)
from shieldwall.errors import ShieldwallError
from shieldwall.stix.ids import new_id
from shieldwall.stix.timestamps import format_ts, now_us

CALIBRATION_PATH = Path(__file__).resolve().parents[1] / "data" / "assess" / \
    "attribution-calibration.json"

@dataclass(frozen=True)
class Weights:
    """Feature weights of the model: a parent technique is implied by any of its
    sub-techniques but says less; techniques of a group's software are what the group
    could do, not what it was seen doing; a named malware family in the query is stronger
    evidence than one technique; `size_exponent` b discounts a group's coverage by
    (median profile size / its size)^b so that a group documenting a hundred techniques
    does not win by breadth alone (0 = no discount). The evaluation re-chooses all four
    inside its cross-validation (evaluation.nested_cv), so no reported figure grades
    weights picked on its own cases.
    """

    parent: float = 0.5
    software_technique: float = 0.3
    software: float = 2.0
    size_exponent: float = 0.0


DEFAULT_WEIGHTS = Weights()

# The tool will not name a candidate on less than this, whatever the score.
MIN_EVIDENCE = 3
NO_CONFIDENT = "no confident attribution"


class AttributionError(ShieldwallError):
    """Input the ranking cannot use; the message names the bad value."""


@dataclass(frozen=True)
class Evidence:
    """What was observed: ATT&CK technique ids, software ids, infrastructure values."""

    techniques: tuple[str, ...] = ()
    software: tuple[str, ...] = ()
    infrastructure: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(set(self.techniques)) + len(set(self.software)) + len(
            set(self.infrastructure))


# What to drop from a profile: called with (group id, "technique"|"software", use, origin),
# origin being "group" or a campaign id. The evaluation uses it to hold evidence out.
Exclude = Callable[[str, str, Use, str], bool]


@dataclass
class Profile:
    attack_id: str
    name: str
    stix_id: str
    direct: dict[str, float]  # observed techniques and software of the group, weight 1
    features: dict[str, float] = field(default_factory=dict)  # weights in (0, 1]


@dataclass
class ProfileSet:
    """All group profiles and the IDF they share; built once per process for ranking."""

    profiles: dict[str, Profile]
    idf: dict[str, float]
    weights: Weights = DEFAULT_WEIGHTS
    median_size: float = 1.0  # median number of techniques a group documents

    @classmethod
    def build(
        cls,
        catalog: AttackCatalog | None = None,
        *,
        include_campaigns: bool = True,
        exclude: Exclude | None = None,
        technique_filter: Mapping[str, set[str]] | None = None,
        exclude_software_use: Callable[[str, Use], bool] | None = None,
        weights: Weights = DEFAULT_WEIGHTS,
        confirmed: Mapping[str, Evidence] | None = None,
    ) -> ProfileSet:
        """Profiles from ATT&CK groups plus the campaigns attributed to them.

        `technique_filter` keeps only the listed techniques of the listed groups (a
        training split); `exclude` drops single relationships (a held-out report), and
        `exclude_software_use` drops a software's own technique relationships (what the
        held-out report says the malware does). `confirmed` (ATT&CK id -> evidence of the
        alliance's confirmed cases of that group, `assess.confirmed`) adds what those
        cases showed to the group's documented behaviour, as ATT&CK adds a campaign's:
        neither filter nor exclusion applies to it, since ATT&CK never held it.
        """
        catalog = catalog or attack_catalog()
        raw: dict[str, dict[str, float]] = {}
        direct: dict[str, dict[str, float]] = {}
        for gid, g in catalog.groups.items():
            feats: dict[str, float] = {}
            seen: dict[str, float] = {}
            sources: list[tuple[str, dict[str, Use], dict[str, Use]]] = [
                ("group", g.techniques, g.software)]
            if include_campaigns:
                for cid in g.campaigns:
                    c = catalog.campaigns[cid]
                    sources.append((cid, c.techniques, c.software))
            keep = technique_filter.get(gid) if technique_filter is not None else None
            for origin, techniques, software in sources:
                for tid, use in techniques.items():
                    if keep is not None and tid not in keep:
                        continue
                    if exclude is not None and exclude(gid, "technique", use, origin):
                        continue
                    seen[tid] = 1.0
                for sid, use in software.items():
                    if keep is not None and sid not in keep:
                        continue
                    if exclude is not None and exclude(gid, "software", use, origin):
                        continue
                    seen[sid] = 1.0
            extra = (confirmed or {}).get(gid)
            if extra is not None:
                for key in (*extra.techniques, *extra.software):
                    seen[key] = 1.0
            for key in seen:
                if key.startswith("T"):
                    _add(feats, key, 1.0)
                    if "." in key:
                        _add(feats, parent_technique(key), weights.parent)
                else:
                    _add(feats, key, 1.0)
                    for tid, suse in catalog.software_uses.get(key, {}).items():
                        if exclude_software_use is not None and exclude_software_use(
                                key, suse):
                            continue
                        _add(feats, tid, weights.software_technique)
                        if "." in tid:
                            _add(feats, parent_technique(tid),
                                 weights.software_technique * weights.parent)
            if feats:
                raw[gid] = feats
                direct[gid] = seen
        n = len(raw)
        df: dict[str, int] = {}
        for feats in raw.values():
            for key in feats:
                df[key] = df.get(key, 0) + 1
        idf = {key: math.log((n + 1) / (d + 0.5)) for key, d in df.items()}
        profiles = {
            gid: Profile(gid, catalog.groups[gid].name, catalog.groups[gid].stix_id,
                         direct[gid], {k: w for k, w in feats.items() if w > 0})
            for gid, feats in raw.items()
        }
        sizes = sorted(_size(p) for p in profiles.values())
        median = sizes[len(sizes) // 2] if sizes else 1.0
        return cls(profiles, idf, weights, float(median))


def _size(p: Profile) -> int:
    return max(1, sum(1 for k in p.direct if k.startswith("T")))


def _add(feats: dict[str, float], key: str, weight: float) -> None:
    if weight > feats.get(key, 0.0):
        feats[key] = weight


@cache
def default_profiles() -> ProfileSet:
    """All of ATT&CK, weighted as the shipped calibration says."""
    return ProfileSet.build(weights=load_calibration().weights)


# ---- ranking -----------------------------------------------------------------------------


@dataclass
class Candidate:
    attack_id: str
    group: str
    stix_id: str
    score: float
    confidence: float
    shared: list[str]
    missing: list[str]
    actor_type: str
    actor_type_reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "attack_id": self.attack_id,
            "group": self.group,
            "score": round(self.score, 4),
            "confidence": round(self.confidence, 4),
            "shared": self.shared,
            "missing": self.missing,
        }


@dataclass
class Assessment:
    """A ranking, the verdict drawn from it, and what was set aside from the input."""

    candidates: list[Candidate]
    verdict: str
    evidence: Evidence
    unknown: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"candidates": [c.as_json() for c in self.candidates], "verdict": self.verdict}


def query_vector(evidence: Evidence, idf: Mapping[str, float],
                 weights: Weights = DEFAULT_WEIGHTS) -> dict[str, float]:
    """The observation as a feature vector: each technique, its parent, each software."""
    feats: dict[str, float] = {}
    for tid in evidence.techniques:
        _add(feats, tid, 1.0)
        if "." in tid:
            _add(feats, parent_technique(tid), weights.parent)
    for sid in evidence.software:
        _add(feats, sid, weights.software)
    return {k: w * idf[k] for k, w in feats.items() if k in idf}


def score_all(evidence: Evidence, profiles: ProfileSet,
              weights: Weights | None = None) -> list[tuple[str, float]]:
    """Every group's share of the observation it explains, best first.

    Coverage is the IDF-weighted share of the observed features found in the profile
    (partial credit for a parent technique or a technique of the group's software). We
    tried discounting large profiles (cosine, coverage x (median/size)^b, query
    likelihood with Jelinek-Mercer or Dirichlet smoothing), IDF powers, rare technique
    pairs, and a learned combination: none beat plain coverage on held-out campaigns
    (docs/benchmarks.md), because the groups ATT&CK attributes campaigns to are mostly
    the large, well-documented ones.

    `weights` overrides the set's own on the query side (parent techniques, software,
    size exponent); the profile side (parent and software-technique weights inside each
    profile) is fixed when the set is built, so pass weights whose profile-side values
    match it (as `evaluation.run_grid` does).
    """
    w = weights or profiles.weights
    q = query_vector(evidence, profiles.idf, w)
    total = sum(q.values())
    if total == 0:
        return []
    out = []
    for gid, p in profiles.profiles.items():
        hit = sum(v * p.features.get(k, 0.0) for k, v in q.items())
        if hit > 0:
            score = hit / total
            if w.size_exponent:
                score *= (profiles.median_size / _size(p)) ** w.size_exponent
            out.append((gid, score))
    out.sort(key=lambda x: (-x[1], x[0]))
    return out


@dataclass(frozen=True)
class Calibration:
    """From a candidate's score and margin to P(candidate is the actor), in two stages.

    First a logistic (Platt) map of score, margin and evidence size; then, when `steps`
    is given, a non-decreasing step map of that logistic value (`steps`: (upper logistic
    value, probability) pairs, ascending), fitted on the logistic values of groups the
    logistic fit did not see and kept conservative where the cases are few
    (`assess.calibration.fit_steps`). The logistic map alone ranks candidates but is
    over-confident on held-out cases; the steps are what makes the figure a probability
    (docs/benchmarks.md). Ships with the feature weights the ranking uses, so that the
    probability is always read off scores made the way it was fitted on.
    """

    version: str
    coef: tuple[float, float, float, float]  # bias, score, margin, log(1+evidence)
    verdict_threshold: float = 0.5
    strong_threshold: float = 0.8
    note: str = ""
    weights: Weights = DEFAULT_WEIGHTS
    steps: tuple[tuple[float, float], ...] = ()

    def logistic(self, score: float, margin: float, evidence: int) -> float:
        """The first stage alone: the Platt map."""
        b, a1, a2, a3 = self.coef
        z = b + a1 * score + a2 * margin + a3 * math.log1p(evidence)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def probability(self, score: float, margin: float, evidence: int) -> float:
        p = self.logistic(score, margin, evidence)
        return step_value(self.steps, p) if self.steps else p


def step_value(steps: Sequence[tuple[float, float]], p: float) -> float:
    """The value of the first step whose upper end reaches p; above the last, the last."""
    for upper, value in steps:
        if p <= upper:
            return value
    return steps[-1][1]


def candidate_features(scores: Sequence[float], i: int) -> tuple[float, float]:
    """A candidate's score and its margin over the best *other* candidate (relative)."""
    s = scores[i]
    best_other = max((x for j, x in enumerate(scores[:6]) if j != i), default=0.0)
    return s, (s - best_other) / s if s > 0 else -1.0


@cache
def load_calibration(path: Path = CALIBRATION_PATH) -> Calibration:
    if not path.is_file():
        # Uncalibrated fallback that never reaches the verdict threshold on its own.
        return Calibration("uncalibrated", (-3.0, 0.0, 0.0, 0.0), note="no calibration file")
    data = orjson.loads(path.read_bytes())
    w = data.get("weights") or {}
    weights = Weights(float(w.get("parent", DEFAULT_WEIGHTS.parent)),
                      float(w.get("software_technique", DEFAULT_WEIGHTS.software_technique)),
                      float(w.get("software", DEFAULT_WEIGHTS.software)),
                      float(w.get("size_exponent", DEFAULT_WEIGHTS.size_exponent)))
    steps = tuple((float(hi), float(v)) for hi, v in data.get("steps") or ())
    return Calibration(
        data["version"], tuple(data["coef"]), data.get("verdict_threshold", 0.5),
        data.get("strong_threshold", 0.8), data.get("note", ""), weights, steps,
    )


def resolve_evidence(
    techniques: Iterable[str] = (),
    software: Iterable[str] = (),
    infrastructure: Iterable[str] = (),
    catalog: AttackCatalog | None = None,
) -> tuple[Evidence, list[str]]:
    """Canonical ids (revoked ATT&CK ids follow their replacement) and what was not known."""
    catalog = catalog or attack_catalog()
    unknown: list[str] = []
    tids: list[str] = []
    for t in techniques:
        c = catalog.canonical_technique(t)
        if c is None:
            unknown.append(t)
        elif c not in tids:
            tids.append(c)
    sids: list[str] = []
    for s in software:
        c = catalog.canonical_software(s)
        if c is None:
            unknown.append(s)
        elif c not in sids:
            sids.append(c)
    infra = tuple(dict.fromkeys(v.strip() for v in infrastructure if v.strip()))
    return Evidence(tuple(tids), tuple(sids), infra), unknown


def rank(
    evidence: Evidence,
    *,
    profiles: ProfileSet | None = None,
    calibration: Calibration | None = None,
    infrastructure_links: Mapping[str, set[str]] | None = None,
    confirmed: Mapping[str, Evidence] | None = None,
    limit: int = 5,
    missing_limit: int = 10,
    unknown: Sequence[str] = (),
) -> Assessment:
    """Rank candidate groups for the evidence; confidence per candidate; the verdict.

    `infrastructure_links` maps an infrastructure value (IP, domain, certificate or file
    hash) to the ATT&CK ids of groups the node's own intelligence links it to
    (`assess.infrastructure`): ATT&CK carries no indicators, so infrastructure only counts
    where the store knows it. A linked value is one more observed feature, in the same
    coverage score, weighted by the same IDF as a technique: a value the store ties to one
    group counts as much as a technique only one group documents, and one tied to many
    groups counts for little.

    `confirmed` (ATT&CK id -> evidence of the alliance's confirmed cases of that group,
    `assess.confirmed.confirmed_evidence`) counts for the group: its techniques and
    software join the group's profile (built here unless `profiles` is given, which must
    then be built with the same `confirmed`), and its infrastructure ties each value to
    the group as a link of the node's intelligence does. Without it the ranking is
    ATT&CK's alone.
    """
    calibration = calibration or load_calibration()
    if confirmed and profiles is None:
        profiles = ProfileSet.build(weights=calibration.weights, confirmed=confirmed)
    profiles = profiles or default_profiles()
    catalog = attack_catalog()
    links = dict(infrastructure_links or {})
    from_cases = confirmed_links(evidence.infrastructure, confirmed or {})
    for value, gids in from_cases.items():
        links[value] = set(links.get(value, ())) | gids
    linked = {v: {g for g in links.get(v, ()) if g in catalog.groups}
              for v in evidence.infrastructure}
    linked = {v: gids for v, gids in linked.items() if gids}
    n = len(profiles.profiles)
    infra_w = {v: math.log((n + 1) / (len(gids) + 0.5)) for v, gids in linked.items()}
    total = sum(query_vector(evidence, profiles.idf, profiles.weights).values())
    grand = total + sum(infra_w.values())
    scored = {gid: s * total / grand for gid, s in score_all(evidence, profiles)}
    infra_hits: dict[str, list[str]] = {}
    for value, gids in linked.items():
        for gid in sorted(gids):
            infra_hits.setdefault(gid, []).append(value)
            scored[gid] = scored.get(gid, 0.0) + infra_w[value] / grand
    ordered = sorted(scored.items(), key=lambda x: (-x[1], x[0]))
    values = [s for _, s in ordered]
    candidates: list[Candidate] = []
    for i, (gid, score) in enumerate(ordered[:limit]):
        p = profiles.profiles.get(gid)
        s, margin = candidate_features(values, i)
        conf = calibration.probability(s, margin, evidence.size)
        shared, missing = _explain(evidence, p, catalog, missing_limit) if p else ([], [])
        shared += [f"infrastructure:{v}" + (" (confirmed case)" if gid in from_cases.get(
            v, ()) else "") for v in infra_hits.get(gid, ())]
        g = catalog.groups[gid]
        kind = actor_type(gid)
        candidates.append(Candidate(gid, g.name, g.stix_id, score, conf, shared, missing,
                                    kind.kind, kind.reason))
    return Assessment(candidates, verdict(candidates, evidence, calibration), evidence,
                      list(unknown))


def confirmed_links(values: Iterable[str], confirmed: Mapping[str, Evidence]
                    ) -> dict[str, set[str]]:
    """Observed value -> the groups whose confirmed cases showed it (case-insensitive:
    both sides hold the canonical forms `stix.values` gives, which only case can split)."""
    seen: dict[str, set[str]] = {}
    for gid, ev in confirmed.items():
        for v in ev.infrastructure:
            seen.setdefault(v.lower(), set()).add(gid)
    return {v: seen[v.lower()] for v in values if v.lower() in seen}


def verdict(candidates: Sequence[Candidate], evidence: Evidence, cal: Calibration) -> str:
    """Estimative words (ICD 203 style) only above the calibrated thresholds."""
    if not candidates or evidence.size < MIN_EVIDENCE:
        return NO_CONFIDENT
    top = candidates[0]
    if top.confidence >= cal.strong_threshold:
        return f"highly likely consistent with {top.group} ({top.attack_id})"
    if top.confidence >= cal.verdict_threshold:
        return f"likely consistent with {top.group} ({top.attack_id})"
    return NO_CONFIDENT


def _explain(
    evidence: Evidence, p: Profile, catalog: AttackCatalog, missing_limit: int
) -> tuple[list[str], list[str]]:
    """Shared: observed ids the group's profile holds (directly, by parent, by software).

    Missing: the group's most distinctive documented techniques that were not observed,
    rarest first; capped, because a large group documents a hundred techniques.
    """
    shared = []
    for tid in evidence.techniques:
        if tid in p.direct:
            shared.append(tid)
        elif tid in p.features:
            shared.append(f"{tid} (via software or sub-technique)")
        elif "." in tid and parent_technique(tid) in p.features:
            shared.append(f"{tid} (parent {parent_technique(tid)})")
    shared += [sid for sid in evidence.software if sid in p.direct]
    observed = set(evidence.techniques) | {parent_technique(t) for t in evidence.techniques}
    idf = default_profiles().idf
    missing = sorted(
        (k for k in p.direct if k.startswith("T") and k not in observed),
        key=lambda k: (-idf.get(k, 0.0), k),
    )[:missing_limit]
    return shared, missing


def attribute(
    techniques: Iterable[str] = (),
    software: Iterable[str] = (),
    infrastructure: Iterable[str] = (),
    **kw: Any,
) -> Assessment:
    """Rank from raw ids typed by an analyst; unknown ids are reported, not fatal."""
    evidence, unknown = resolve_evidence(techniques, software, infrastructure)
    if not evidence.techniques and not evidence.software and not evidence.infrastructure:
        raise AttributionError(
            "no known ATT&CK technique or software id in the evidence"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            + "; give ids such as T1566.001 or S0366")
    return rank(evidence, unknown=unknown, **kw)


# ---- STIX --------------------------------------------------------------------------------


def attributed_to(
    assessment: Assessment,
    source_ref: str | None,
    *,
    created_by_ref: str | None = None,
    marking_refs: Sequence[str] = (),
    calibration: Calibration | None = None,
) -> list[dict[str, Any]]:
    """`attributed-to` relationships with confidence, worded as an assessment.

    Only candidates that pass the verdict threshold get a relationship; the rest are
    leads, not attributions. Without a source (no incident or campaign given) there is
    nothing to attribute, so nothing is emitted. The target is the ATT&CK intrusion
    set's own STIX id, so every node points at the same object. `calibration` is the one
    the assessment was ranked with (the shipped one unless `rank` was given another).
    """
    if source_ref is None or assessment.verdict == NO_CONFIDENT:
        return []
    cal = calibration or load_calibration()
    ts = format_ts(now_us())
    out = []
    for c in assessment.candidates:
        if c.confidence < cal.verdict_threshold:
            continue
        rel: dict[str, Any] = {
            "type": "relationship",
            "spec_version": "2.1",
            "id": new_id("relationship"),
            "created": ts,
            "modified": ts,
            "relationship_type": "attributed-to",
            "source_ref": source_ref,
            "target_ref": c.stix_id,
            "confidence": max(0, min(100, round(c.confidence * 100))),
            "description": (
                f"Assessment, not a statement of fact: the observed behaviour is "
                f"{assessment.verdict.split(' consistent')[0]} consistent with {c.group} "
                f"({c.attack_id}); shared: {', '.join(c.shared) or 'none'}. Calibrated "
                f"confidence {c.confidence:.2f} ({cal.version})."
            ),
            "external_references": [{
                "source_name": "mitre-attack", "external_id": c.attack_id,
                "url": f"https://attack.mitre.org/groups/{c.attack_id}",
            }],
            "x_shieldwall_assessment": {
                "kind": "attribution-support",
                "score": round(c.score, 4),
                "shared": c.shared,
                "missing": c.missing,
                "actor_type": c.actor_type,
                "calibration": cal.version,
            },
        }
        if created_by_ref:
            rel["created_by_ref"] = created_by_ref
        if marking_refs:
            rel["object_marking_refs"] = list(marking_refs)
        out.append(rel)
    return out


def ranking_note(
    assessment: Assessment,
    about: str,
    *,
    created_by_ref: str | None = None,
    marking_refs: Sequence[str] = (),
    top: int = 5,
) -> dict[str, Any]:
    """The whole ranking as a STIX `note` about an incident or campaign.

    `attributed_to` emits relationships only above the confidence threshold; the cell
    still needs to see the leads and what each one lacks when the verdict is "no
    confident attribution", without that ranking ever reading as an attribution.
    """
    ts = format_ts(now_us())
    lines = [f"{i + 1}. {c.group} ({c.attack_id}): confidence {c.confidence:.2f}; shared "
             f"{', '.join(c.shared) or 'none'}" for i, c in enumerate(assessment.candidates[:top])]
    note: dict[str, Any] = {
        "type": "note", "spec_version": "2.1", "id": new_id("note"),
        "created": ts, "modified": ts,
        "abstract": f"Attribution support: {assessment.verdict}",
        "content": ("Ranking of candidate intrusion sets from ATT&CK profiles; an assessment "
                    "for the coordination cell, not a statement of fact.\n" + "\n".join(lines)),
        "object_refs": [about],
        "x_shieldwall_attribution": {
            "verdict": assessment.verdict,
            "candidates": [c.as_json() for c in assessment.candidates[:top]],
        },
    }
    if created_by_ref:
        note["created_by_ref"] = created_by_ref
    if marking_refs:
        note["object_marking_refs"] = list(marking_refs)
    return note


# ---- evidence from the store -------------------------------------------------------------

_SCO_VALUE_TYPES = {"ipv4-addr", "ipv6-addr", "domain-name", "url", "x509-certificate"}


def _attack_id(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("external_references") or ():
        if ref.get("source_name") in ("mitre-attack", "mitre-ics-attack") and ref.get(
                "external_id"):
            return str(ref["external_id"])
    return None


def _infra_value(obj: Mapping[str, Any]) -> list[str]:
    if obj.get("type") in _SCO_VALUE_TYPES and obj.get("value"):
        return [str(obj["value"])]
    if obj.get("type") == "file":
        return [str(v) for v in (obj.get("hashes") or {}).values()]
    if obj.get("type") == "observed-data":  # a case's observable: its SCO embedded
        from shieldwall.assess.correlation import sco_values

        return [v for sco in (obj.get("objects") or {}).values() if isinstance(sco, Mapping)
                for _, v in sorted(sco_values(sco))]
    return []


def evidence_from_store(store: Any, source_id: str) -> tuple[Evidence, list[str]]:
    """Techniques, software and infrastructure of an incident or campaign in the store.

    Read the way correlation reads them (`correlation.observed_in`): an incident's own
    `x_shieldwall_techniques`, the indicators its sightings and related refs name (their
    pattern values are the infrastructure), observed data; a campaign, the same for every
    incident and sighting it groups (`x_shieldwall_object_refs`). Values of warning-listed
    indicators are left out: a public resolver says nothing of who attacked. The object's
    relationships are followed one hop too (`uses`, `related-to`, `indicates`, ...), for
    ATT&CK attack patterns, malware and tools, and observables linked directly. Read as
    the node's operator: the CLI's view, which sees everything the node holds.
    """
    from shieldwall.assess.correlation import CORRELATED_TYPES, observed_in, pattern_values

    row = store.get(source_id)
    if row is None:
        raise AttributionError(f"no object {source_id} in this node's store")
    source = row.obj()
    members = [source] if source.get("type") in CORRELATED_TYPES else []
    ids = [str(i) for i in source.get("x_shieldwall_object_refs") or ()
           if isinstance(i, str)]
    linked: list[str] = []
    for rel_row in store.linked([source_id]):
        rel = rel_row.obj()
        if rel.get("source_ref") == source_id:
            linked.append(rel.get("target_ref", ""))
        elif rel.get("target_ref") == source_id:
            linked.append(rel.get("source_ref", ""))
    techniques: list[str] = [str(t) for t in source.get("x_shieldwall_techniques") or ()]
    software: list[str] = []
    infrastructure: list[str] = []
    for ref in dict.fromkeys(linked + ids):
        linked_row = store.get(ref)
        if linked_row is None:
            continue
        obj = linked_row.obj()
        if obj.get("type") in CORRELATED_TYPES:
            members.append(obj)
            continue
        aid = _attack_id(obj)
        if obj.get("type") == "attack-pattern" and aid:
            techniques.append(aid)
        elif obj.get("type") in ("malware", "tool") and aid:
            software.append(aid)
        infrastructure += _infra_value(obj)
    for ob in observed_in(store, members):
        for kind, value in sorted(ob.values - ob.benign):
            if kind == "technique":
                techniques.append(value)
            elif kind == "indicator":
                ind = store.get(value)
                named = pattern_values(str(ind.obj().get("pattern", ""))) if ind else set()
                infrastructure += [v for _, v in sorted(named - ob.benign)]
            else:
                infrastructure.append(value)
    return resolve_evidence(techniques, software, infrastructure)
