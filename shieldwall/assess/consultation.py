"""When must the alliance consult? A recommendation for people to decide, never a decision.

The coordination cell sets a consultation policy: per recommendation level, the campaign
severity, breadth (members hit), critical sectors and attribution confidence at which it
applies. The policy is stored as a STIX object at TLP:RED whose audience names only the
roles it lists (`readers`), so the store's access rules (the same ones TAXII applies)
never serve it to members; the thresholds stay the cell's.

`recommend` maps a campaign's facts to the highest level whose thresholds are all met:
monitor, coordinate, request assistance, or convene consultation of all allies. Each
recommendation lists every check (needed, found, met), the response options to consider
(diplomatic, economic, cyber, conventional) and the principles to check (restraint,
proportionality, international law). It stays "awaiting decision" until a named person
records a decision with reasoning in the append-only audit log (`consult_log`: database
triggers refuse UPDATE and DELETE, so not even direct SQL can rewrite history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from shieldwall.errors import ShieldwallError
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import (
    AUDIENCE_PROPERTY,
    CONSULTATION_POLICY_TYPE,
    TLP,
    tlp_marking_ref,
)
from shieldwall.stix.timestamps import format_ts, now_us, parse_ts
from shieldwall.store import Access, Provenance, Query, Store

# One of `AUDIENCE_ONLY_TYPES`: its audience alone decides who reads it, so the member
# whose node stored the policy reads it only when the policy names it.
POLICY_TYPE = CONSULTATION_POLICY_TYPE
LEVELS = ("monitor", "coordinate", "request-assistance", "convene-consultation")
# A person may also decide to take no step at all; the tool never picks for them.
DECISIONS = (*LEVELS, "no-action")
PRINCIPLES = ("restraint", "proportionality", "international law")
AWAITING = "awaiting decision"

RESPONSE_OPTIONS: Mapping[str, Mapping[str, Sequence[str]]] = {
    "monitor": {
        "cyber": ["share indicators and sightings with all members",
                  "raise detection priority for the campaign's infrastructure"],
    },
    "coordinate": {
        "diplomatic": ["brief the affected members' points of contact"],
        "cyber": ["joint analysis by the affected members' CERTs",
                  "coordinated blocking of shared infrastructure"],
    },
    "request-assistance": {
        "diplomatic": ["formal request for assistance from allies"],
        "economic": ["consider coordinated measures against enabling providers"],
        "cyber": ["dispatch a rapid reaction team", "coordinated takedown requests"],
    },
    "convene-consultation": {
        "diplomatic": ["convene consultation of all allies", "coordinated public attribution"],
        "economic": ["coordinated sanctions"],
        "cyber": ["collective defensive cyber operations within agreed mandates"],
        "conventional": ["consider whether the effects reach the level of an armed attack; "
                         "any conventional option is for the allies' governments alone"],
    },
}


class ConsultationError(ShieldwallError):
    """A policy, campaign or decision the consultation cannot use; the message says why."""


@dataclass(frozen=True)
class Threshold:
    """All must hold for a level to apply. Confidence is 0-1 (None: not required)."""

    min_severity: float
    min_members: int = 1
    min_critical_sectors: int = 0
    min_attribution_confidence: float | None = None


@dataclass(frozen=True)
class ConsultationPolicy:
    version: str
    readers: tuple[str, ...]
    critical_sectors: tuple[str, ...]
    thresholds: Mapping[str, Threshold]  # coordinate, request-assistance, convene-consultation

    def __post_init__(self) -> None:
        if not self.readers:
            raise ConsultationError("a consultation policy must name the roles that may read it")
        unknown = set(self.thresholds) - set(LEVELS[1:])
        if unknown:
            raise ConsultationError(f"unknown level(s) {', '.join(sorted(unknown))}; "
                                    f"levels: {', '.join(LEVELS[1:])}")

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "readers": list(self.readers),
                "critical_sectors": list(self.critical_sectors),
                "thresholds": {k: asdict(v) for k, v in self.thresholds.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsultationPolicy:
        try:
            return cls(str(data["version"]), tuple(data["readers"]),
                       tuple(data.get("critical_sectors", ())),
                       {k: Threshold(**v) for k, v in data["thresholds"].items()})
        except (KeyError, TypeError) as exc:
            raise ConsultationError(f"malformed consultation policy: {exc}") from None


# A starting point for the cell to change; members never see which figures it chose.
DEFAULT_POLICY = ConsultationPolicy(
    version="consult-v1",
    readers=("coordination-cell",),
    critical_sectors=("energy", "health", "healthcare", "government", "government-national",
                      "elections", "defence", "telecommunications", "water", "finance"),
    thresholds={
        "coordinate": Threshold(min_severity=40, min_members=2),
        "request-assistance": Threshold(min_severity=60, min_members=2, min_critical_sectors=1),
        "convene-consultation": Threshold(min_severity=75, min_members=3,
                                          min_critical_sectors=2,
                                          min_attribution_confidence=0.6),
    },
)


# ---- keeping the policy where only its readers can read it ---------------------------


def policy_id(cell: str) -> str:
    return deterministic_id(POLICY_TYPE, f"shieldwall-consultation-policy:{cell}")


def policy_object(policy: ConsultationPolicy, *, cell: str, created_by_ref: str,
                  previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The policy as a STIX custom object at TLP:RED, audience = its readers."""
    now = now_us()
    if previous is not None:
        now = max(now, parse_ts(previous["modified"]) + 1)
    ts = format_ts(now)
    return {
        "type": POLICY_TYPE, "spec_version": "2.1", "id": policy_id(cell),
        "created": previous["created"] if previous else ts, "modified": ts,
        "created_by_ref": created_by_ref,
        "object_marking_refs": [tlp_marking_ref(TLP.RED)],
        AUDIENCE_PROPERTY: list(policy.readers),
        "x_shieldwall_policy": policy.as_json(),
    }


def store_policy(store: Store, policy: ConsultationPolicy, *, cell: str, created_by_ref: str
                 ) -> dict[str, Any]:
    row = store.get(policy_id(cell))
    obj = policy_object(policy, cell=cell, created_by_ref=created_by_ref,
                        previous=row.obj() if row else None)
    store.put(obj, Provenance(cell, "local"))
    return obj


def reader_access(role: str) -> Access:
    """What a role named in a policy's audience may read: every level, RED when named."""
    return Access(open_levels=frozenset({int(TLP.CLEAR), int(TLP.GREEN), int(TLP.AMBER)}),
                  named_levels=frozenset({int(TLP.AMBER_STRICT), int(TLP.RED)}),
                  names=frozenset({role}))


def load_policy(store: Store, *, cell: str, access: Access) -> ConsultationPolicy:
    """The cell's newest policy that this node itself stored, as `access` may see it;
    refused when there is none it may see.

    Only versions stored locally count (`consult policy`, channel "local"): TAXII and
    federation refuse the type on arrival (`stix.markings.LOCAL_ONLY_TYPES`), and a version
    that arrived any other way, before that rule or through `import`, never sets the
    thresholds the cell's recommendations follow.
    """
    page = store.query(Query(ids=[policy_id(cell)], access=access, versions="all"))
    rows = sorted((r for r in page.rows if r.channel == "local"),
                  key=lambda r: r.version_us, reverse=True)
    if not rows:
        raise ConsultationError(
            f"no consultation policy of {cell!r} readable with this access: it is TLP:RED "
            "for the roles it names (set it with `shieldwall consult policy`)")
    return ConsultationPolicy.from_json(rows[0].obj()["x_shieldwall_policy"])


# ---- recommending -------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignFacts:
    campaign_id: str
    severity: float
    members: tuple[str, ...]
    sectors: tuple[str, ...]
    attribution_confidence: float | None  # 0-1, best `attributed-to`; None when none


def facts_from_store(store: Store, campaign_id: str, access: Access | None = None
                     ) -> CampaignFacts:
    """Severity, members and sectors from the candidate campaign (`x_shieldwall_severity`,
    see `correlation.campaign_objects`); the best confidence of its `attributed-to`, among
    those `access` may see (a reader's recommendation never rests on a hidden one)."""
    row = store.get(campaign_id)
    if row is None or row.type != "campaign":
        raise ConsultationError(f"no campaign {campaign_id} in this node")
    camp = row.obj()
    sev = camp.get("x_shieldwall_severity")
    sev = sev if isinstance(sev, dict) else {}
    score = _number(sev.get("score"))
    if score is None:
        raise ConsultationError(f"{campaign_id} carries no campaign severity; publish it from "
                                "correlation first")
    return CampaignFacts(campaign_id, score,
                         _names(sev.get("members")) or _names(camp.get("x_shieldwall_members")),
                         _names(sev.get("sector_names")),
                         attribution_confidence(store, campaign_id, access,
                                                _names(camp.get("x_shieldwall_object_refs"))))


# A stored campaign or relationship may hold any JSON (stored before validation, or by a
# path that does not validate): what is not of the expected shape is read as absent.
def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _names(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def attribution_confidence(store: Store, campaign_id: str, access: Access | None = None,
                           incidents: tuple[str, ...] = ()) -> float | None:
    """The best confidence (0-1) among the `attributed-to` links `access` sees of the
    campaign or of one of its `incidents` (the objects it groups). The tool's own ranking
    stays below 0.5 on ATT&CK evidence (docs/assessment.md), so what can meet a convening
    threshold is an analyst's word: a team's confirmed attribution of a case it worked
    (`case attribute`), which is an `attributed-to` of that incident, speaks for the
    campaign that holds it."""
    sources = {campaign_id, *incidents}
    best: float | None = None
    for rel in store.iter_query(Query(types=["relationship"], access=access)):
        r = rel.obj()
        confidence = _number(r.get("confidence"))
        src = r.get("source_ref")  # any JSON: a list in it would not hash
        if (isinstance(src, str) and src in sources
                and r.get("relationship_type") == "attributed-to"
                and confidence is not None):
            c = confidence / 100
            best = c if best is None else max(best, c)
    return best


@dataclass(frozen=True)
class Check:
    level: str
    criterion: str
    needed: Any
    found: Any
    met: bool


@dataclass
class Recommendation:
    campaign_id: str
    level: str
    policy_version: str
    checks: list[Check]
    response_options: dict[str, list[str]]
    principles: list[str] = field(default_factory=lambda: list(PRINCIPLES))
    status: str = AWAITING

    def as_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "recommendation": self.level,
                "policy_version": self.policy_version, "status": self.status,
                "checks": [asdict(c) for c in self.checks],
                "response_options": self.response_options, "principles": self.principles}


def recommend(facts: CampaignFacts, policy: ConsultationPolicy) -> Recommendation:
    """The highest level whose thresholds all hold (monitor when none does)."""
    critical = sorted({s.lower() for s in facts.sectors} & {s.lower()
                                                            for s in policy.critical_sectors})
    checks: list[Check] = []
    level = LEVELS[0]
    for name in LEVELS[1:]:
        t = policy.thresholds.get(name)
        if t is None:
            continue
        mine = [
            Check(name, "campaign severity", t.min_severity, facts.severity,
                  facts.severity >= t.min_severity),
            Check(name, "members hit", t.min_members, len(facts.members),
                  len(facts.members) >= t.min_members),
            Check(name, "critical sectors", t.min_critical_sectors, critical,
                  len(critical) >= t.min_critical_sectors),
        ]
        if t.min_attribution_confidence is not None:
            conf = facts.attribution_confidence
            mine.append(Check(name, "attribution confidence", t.min_attribution_confidence,
                              conf, conf is not None and conf >= t.min_attribution_confidence))
        checks += mine
        if all(c.met for c in mine):
            level = name
    options: dict[str, list[str]] = {}
    for name in LEVELS[: LEVELS.index(level) + 1]:
        for category, items in RESPONSE_OPTIONS[name].items():
            options.setdefault(category, []).extend(items)
    return Recommendation(facts.campaign_id, level, policy.version, checks, options)


# ---- the append-only audit log ---------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    seq: int
    recorded: str
    campaign_id: str
    decided_by: str
    decision: str
    reason: str
    recommendation: str
    policy_version: str
    snapshot: dict[str, Any]


def record_decision(store: Store, rec: Recommendation, *, by: str, decision: str, reason: str
                    ) -> Decision:
    """Append a named person's decision with its reasoning. Nothing is decided without one."""
    return append_decision(store, rec.campaign_id, by=by, decision=decision, reason=reason,
                           recommendation=rec.level, policy_version=rec.policy_version,
                           snapshot=rec.as_json(), allowed=DECISIONS)


def append_decision(store: Store, subject_id: str, *, by: str, decision: str, reason: str,
                    recommendation: str, policy_version: str, snapshot: Mapping[str, Any],
                    allowed: Sequence[str]) -> Decision:
    """Append a decision on `subject_id` (a campaign; for the steps that follow a
    recommendation, such as a rapid reaction team's dispatch, the assistance request:
    respond.assist) with the person who took it and the reasoning; `allowed`: the
    decisions that subject admits."""
    by, reason = by.strip(), reason.strip()
    if not by:
        raise ConsultationError("a decision needs the name of the person who takes it (--by)")
    if not reason:
        raise ConsultationError("a decision needs its reasoning (--reason)")
    if decision not in allowed:
        raise ConsultationError(f"decision {decision!r}: choose one of {', '.join(allowed)}")
    recorded = now_us()
    text = orjson.dumps(dict(snapshot)).decode()
    q = "?" if store.dialect == "sqlite" else "%s"
    with store.transaction() as conn:
        conn.exec_driver_sql(
            "INSERT INTO consult_log (recorded_us, campaign_id, decided_by, decision, reason, "
            f"recommendation, policy_version, snapshot) VALUES ({', '.join([q] * 8)})",
            (recorded, subject_id, by, decision, reason, recommendation, policy_version, text))
    log = read_log(store, subject_id)
    return log[-1]


def read_log(store: Store, campaign_id: str | None = None) -> list[Decision]:
    """Every decision, oldest first (optionally of one campaign)."""
    q = "?" if store.dialect == "sqlite" else "%s"
    sql = ("SELECT seq, recorded_us, campaign_id, decided_by, decision, reason, recommendation,"
           " policy_version, snapshot FROM consult_log")
    params: tuple[Any, ...] = ()
    if campaign_id is not None:
        sql += f" WHERE campaign_id = {q}"
        params = (campaign_id,)
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(sql + " ORDER BY seq", params).all()
    return [Decision(r[0], format_ts(r[1]), r[2], r[3], r[4], r[5], r[6], r[7],
                     orjson.loads(r[8])) for r in rows]


def status_of(store: Store, campaign_id: str) -> str:
    """`awaiting decision`, or the latest recorded decision and who took it."""
    log = read_log(store, campaign_id)
    if not log:
        return AWAITING
    last = log[-1]
    return f"decided: {last.decision} by {last.decided_by} at {last.recorded}"
