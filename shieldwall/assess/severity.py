"""Severity after CISA's NCISS: a transparent 0-100 score, its level, and its breakdown.

The weights live in a versioned file shipped as data (`shieldwall/data/assess/`), not in
code, so the coordination cell can read exactly what produced a figure and change it
without a release. Unknown factors are never silently zero: they take the configured
imputed answer and are flagged in the breakdown, so a reader sees how much of a score
is guesswork.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from shieldwall.errors import ShieldwallError
from shieldwall.stix.timestamps import parse_ts

CONFIG_DIR = Path(__file__).resolve().parents[1] / "data" / "assess"
DEFAULT_VERSION = "nciss-v1"
# OASIS Incident Core extension (STIX 2.1 incident: determination, scores, ...).
INCIDENT_CORE_EXTENSION = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"

LEVELS = (  # name, colour, in rising order
    ("Baseline", "white"), ("Low", "green"), ("Medium", "yellow"), ("High", "orange"),
    ("Severe", "red"), ("Emergency", "black"),
)


class SeverityError(ShieldwallError):
    """A factor answer or configuration the scorer does not know; the message lists choices."""


@dataclass(frozen=True)
class Factor:
    name: str
    weight: float
    impute: str
    options: Mapping[str, float]


@dataclass(frozen=True)
class SeverityConfig:
    version: str
    factors: tuple[Factor, ...]
    levels: tuple[tuple[str, str, float], ...]  # (name, colour, lower bound)
    campaign: Mapping[str, Any]

    def level(self, score: float) -> tuple[str, str]:
        found = self.levels[0]
        for lvl in self.levels:
            if score >= lvl[2]:
                found = lvl
        return found[0], found[1]


@cache
def load_config(version: str = DEFAULT_VERSION) -> SeverityConfig:
    path = CONFIG_DIR / f"{version}.toml"
    if not path.is_file():
        raise SeverityError(f"no severity configuration {version!r} in {CONFIG_DIR}")
    data = tomllib.loads(path.read_text())
    factors = tuple(
        Factor(name, float(f["weight"]), f["impute"], {k: float(v) for k, v in
                                                       f["options"].items()})
        for name, f in data["factors"].items()
    )
    total = sum(f.weight for f in factors)
    if abs(total - 1.0) > 1e-6:
        raise SeverityError(f"{path}: factor weights sum to {total}, not 1")
    bounds = data["levels"]
    levels = tuple((name, colour, float(bounds[name.lower()])) for name, colour in LEVELS)
    return SeverityConfig(data["version"], factors, levels, data.get("campaign", {}))


@dataclass
class FactorScore:
    factor: str
    answer: str
    value: float
    weight: float
    imputed: bool

    @property
    def contribution(self) -> float:
        return self.value * self.weight


@dataclass
class Severity:
    score: float
    level: str
    colour: str
    version: str
    factors: list[FactorScore] = field(default_factory=list)

    @property
    def imputed(self) -> list[str]:
        return [f.factor for f in self.factors if f.imputed]

    def as_json(self) -> dict[str, Any]:
        return {
            "score": self.score, "level": self.level, "colour": self.colour,
            "version": self.version, "imputed": self.imputed,
            "factors": [{"factor": f.factor, "answer": f.answer, "value": f.value,
                         "weight": f.weight, "contribution": round(f.contribution, 2),
                         "imputed": f.imputed} for f in self.factors],
        }


def score_incident(answers: Mapping[str, str | None], version: str = DEFAULT_VERSION
                   ) -> Severity:
    """Weighted mean of the factor values; unknown (missing or None) answers imputed."""
    cfg = load_config(version)
    unknown = set(answers) - {f.name for f in cfg.factors}
    if unknown:
        raise SeverityError(f"unknown factor(s) {', '.join(sorted(unknown))}; known: "
                            f"{', '.join(f.name for f in cfg.factors)}")
    parts = []
    for f in cfg.factors:
        answer = answers.get(f.name)
        imputed = answer is None or (answer == "unknown" and "unknown" not in f.options)
        chosen = f.impute if imputed else str(answer)
        if chosen not in f.options:
            raise SeverityError(f"{f.name}: unknown answer {chosen!r}; choose one of "
                                f"{', '.join(f.options)}")
        parts.append(FactorScore(f.name, chosen, f.options[chosen], f.weight,
                                 imputed or chosen == "unknown"))
    total = round(sum(p.contribution for p in parts), 1)
    level, colour = cfg.level(total)
    return Severity(total, level, colour, cfg.version, parts)


def with_scores(incident: dict[str, Any], severity: Severity) -> dict[str, Any]:
    """A copy of the incident whose Incident Core `scores` carry this breakdown.

    Other scores (another version, another scheme) are kept; a score of the same name
    is replaced. The caller bumps `modified` and stores the new version.
    """
    new = dict(incident)
    exts = dict(new.get("extensions") or {})
    core = dict(exts.get(INCIDENT_CORE_EXTENSION) or {"extension_type": "property-extension"})
    scores = [s for s in core.get("scores") or () if s.get("name") != severity.version]
    scores.append({
        "name": severity.version,
        "value": severity.score,
        "description": f"{severity.level} ({severity.colour}); imputed: "
                       f"{', '.join(severity.imputed) or 'none'}",
        "x_shieldwall_breakdown": severity.as_json(),
    })
    core["scores"] = scores
    exts[INCIDENT_CORE_EXTENSION] = core
    new["extensions"] = exts
    return new


@dataclass(frozen=True)
class MemberIncident:
    """One member's scored incident, as the campaign score sees it."""

    member: str
    sector: str
    score: float
    first_seen: str  # STIX timestamp


@dataclass
class CampaignSeverity:
    score: float
    level: str
    colour: str
    base: float
    breadth: float
    sectors: float
    spread: float
    members: list[str]
    sector_names: list[str]
    days: float

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def score_campaign(incidents: Sequence[MemberIncident], version: str = DEFAULT_VERSION
                   ) -> CampaignSeverity:
    """Alliance level: worst incident + breadth + critical sectors + coordinated spread."""
    if not incidents:
        raise SeverityError("a campaign needs at least one scored incident")
    cfg = load_config(version)
    c = cfg.campaign
    members = sorted({i.member for i in incidents})
    sectors = sorted({i.sector.lower() for i in incidents if i.sector})
    base = max(i.score for i in incidents)
    breadth = min(float(c["max_breadth"]), float(c["per_extra_member"]) * (len(members) - 1))
    sector_bonus = min(float(c["max_sector_bonus"]),
                       sum(float(c["sectors"].get(s, 0.0)) for s in sectors))
    times = sorted(parse_ts(i.first_seen) for i in incidents)
    days = (times[-1] - times[0]) / 86_400_000_000
    spread = float(c["coordinated_bonus"]) if len(members) >= 3 and days <= float(
        c["coordinated_days"]) else 0.0
    total = round(min(100.0, base + breadth + sector_bonus + spread), 1)
    level, colour = cfg.level(total)
    return CampaignSeverity(total, level, colour, base, breadth, sector_bonus, spread,
                            members, sectors, round(days, 2))
