"""What the dashboard shows, read from the store under one member's `Access`.

Every function here takes the reader's `Access` and passes it to the store, so a page,
its JSON twin, its counts and the live stream apply the same decision TAXII applies.
Nothing here reads the store without it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.stix.timestamps import format_ts, now_us, parse_ts
from shieldwall.store import Access, Query, Store, StoredVersion
from shieldwall.web.shapes import INCIDENT_CORE, readable

HOUR_US = 3_600 * 1_000_000
DAY_US = 24 * HOUR_US
EXPLANATION = "x_shieldwall_explanation"
_OBS_TYPE = re.compile(r"\[\s*([a-z0-9-]+):")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")

# Alert level of a member from the sightings recorded for it in the last 24 hours.
ALERT_LEVELS = (  # (name, minimum sightings, minimum hits)
    ("severe", 10, 1_000),
    ("high", 5, 100),
    ("elevated", 1, 1),
)


def read(row: StoredVersion) -> dict[str, Any]:
    """A stored object as every page reads it: without what it could not read (`shapes`)."""
    return readable(row.obj())


def _ts(value: Any) -> int | None:
    try:
        return parse_ts(str(value)) if value else None
    except ValueError:
        return None


def pattern_types(pattern: str) -> list[str]:
    return sorted(set(_OBS_TYPE.findall(pattern or "")))


def pattern_values(pattern: str) -> list[str]:
    return _QUOTED.findall(pattern or "")


@dataclass
class Names:
    """Identity ids to member names (every node derives the same id for a name)."""

    by_identity: dict[str, str]

    def of(self, ref: str | None) -> str:
        if not ref:
            return "—"
        return self.by_identity.get(ref, ref)


@dataclass
class SightingView:
    id: str
    seq: int
    tlp: TLP
    member: str
    indicator_id: str
    count: int
    first_seen: str
    last_seen: str
    modified_us: int
    source: str
    explanation: list[dict[str, Any]] = field(default_factory=list)
    indicator_name: str | None = None
    blind_owner: str | None = None  # a blind hit: the member whose protected indicator hit

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "tlp": self.tlp.label, "member": self.member,
            "indicator_id": self.indicator_id, "indicator_name": self.indicator_name,
            "count": self.count, "first_seen": self.first_seen, "last_seen": self.last_seen,
            "blind_owner": self.blind_owner,
        }


def sighting_view(row: StoredVersion, names: Names) -> SightingView:
    obj = read(row)
    where = obj.get("where_sighted_refs") or [obj.get("created_by_ref")]
    return SightingView(
        id=row.id, seq=row.seq, tlp=row.tlp, member=names.of(where[0] if where else None),
        indicator_id=str(obj.get("sighting_of_ref", "")), count=int(obj.get("count", 1) or 1),
        first_seen=str(obj.get("first_seen") or obj.get("created", "")),
        last_seen=str(obj.get("last_seen") or obj.get("first_seen") or obj.get("created", "")),
        modified_us=row.version_us, source=row.source,
        explanation=list(obj.get(EXPLANATION) or []),
        blind_owner=_blind_owner(obj),
    )


def _blind_owner(obj: dict[str, Any]) -> str | None:
    """The owner a blind hit names (`blind/hits.py`); the sighting carries the entry's
    opaque handle, never the protected value, and nothing more is looked up."""
    owner = obj.get("x_shieldwall_blind_owner")
    return owner if isinstance(owner, str) and obj.get("x_shieldwall_blind_handle") else None


def sightings(store: Store, access: Access, names: Names, *, after_seq: int | None = None,
              since_us: int | None = None) -> list[SightingView]:
    """Visible sightings (latest versions), newest first."""
    q = Query(types=["sighting"], access=access, after_seq=after_seq,
              modified_from_us=since_us)
    views = [sighting_view(r, names) for r in store.iter_query(q)]
    views.sort(key=lambda s: (s.last_seen, s.seq), reverse=True)
    return views


def name_indicators(store: Store, access: Access, views: Iterable[SightingView]) -> None:
    """Fill in indicator names the reader may see (an unseen indicator stays an id)."""
    views = list(views)
    ids = sorted({v.indicator_id for v in views if v.indicator_id})
    found: dict[str, str] = {}
    for i in range(0, len(ids), 500):
        for row in store.query(Query(ids=ids[i:i + 500], access=access)).rows:
            found[row.id] = row.name or row.id
    for v in views:
        v.indicator_name = found.get(v.indicator_id)


def newest(store: Store, q: Query, n: int) -> list[StoredVersion]:
    """The `n` most recently added rows matching `q`, newest first.

    The store pages oldest first (keyset on seq); the window before the newest row grows
    eightfold until it holds `n` rows, so a read touches about `8 n` rows, not the store.
    """
    bounds = store.bounds(q)
    if bounds is None:
        return []
    lo, hi = bounds
    span = HOUR_US
    while True:
        after = hi - span
        if after < lo or store.count(replace(q, added_after_us=after)) >= n:
            break
        span *= 8
    rows = list(store.iter_query(replace(q, added_after_us=max(after, lo - 1), limit=None)))
    return rows[::-1][:n]


def alert_level(n_sightings: int, hits: int) -> str:
    for name, min_s, min_h in ALERT_LEVELS:
        if n_sightings >= min_s or hits >= min_h:
            return name
    return "normal"


def overview(store: Store, access: Access, names: Names, own_member: str,
             now: int | None = None) -> dict[str, Any]:
    now = now or now_us()
    recent = sightings(store, access, names, since_us=now - 7 * DAY_US)
    name_indicators(store, access, recent[:200])
    day = [s for s in recent if s.modified_us >= now - DAY_US]
    per_member: dict[str, list[SightingView]] = defaultdict(list)
    for s in recent:
        per_member[s.member].append(s)
    members = []
    for m in sorted(set(per_member) | {own_member}):
        todays = [s for s in day if s.member == m]
        hits = sum(s.count for s in todays)
        members.append({
            "member": m, "level": alert_level(len(todays), hits), "sightings_24h": len(todays),
            "hits_24h": hits, "recent": per_member.get(m, [])[:3],
        })
    members.sort(key=lambda m: (-m["sightings_24h"], -m["hits_24h"], m["member"]))
    campaign_rows = [r for r in newest(store, Query(types=["campaign"], access=access,
                                                    include_revoked=False), 20)]
    intel = newest(store, Query(types=["indicator", "report", "malware", "intrusion-set",
                                       "campaign", "vulnerability"],
                                access=access, include_revoked=False), 10)
    return {
        "members": members,
        "recent": recent[:15],
        "campaigns": [campaign_summary(r) for r in campaign_rows],
        "intel": intel,
        "timeline": timeline(recent),
        "total_sightings": store.count(Query(types=["sighting"], access=access)),
        "total_indicators": store.count(Query(types=["indicator"], access=access)),
    }


def timeline(views: list[SightingView], hours: int = 24) -> dict[str, Any]:
    """Sightings per member per hour over the `hours` up to the newest sighting."""
    times = [(_ts(v.last_seen) or v.modified_us, v.member) for v in views]
    if not times:
        return {"hours": [], "series": {}}
    end = max(t for t, _ in times)
    end = end - end % HOUR_US + HOUR_US
    start = end - hours * HOUR_US
    buckets: dict[str, Counter[int]] = defaultdict(Counter)
    for t, m in times:
        if t >= start:
            buckets[m][(t - start) // HOUR_US] += 1
    return {
        "hours": [(start + i * HOUR_US) // 1_000_000 for i in range(hours)],
        "series": {m: [c.get(i, 0) for i in range(hours)] for m, c in sorted(buckets.items())},
    }


def campaign_summary(row: StoredVersion) -> dict[str, Any]:
    obj = read(row)
    return {"id": row.id, "name": row.name or row.id, "tlp": row.tlp,
            "first_seen": obj.get("first_seen", ""), "last_seen": obj.get("last_seen", ""),
            "objective": obj.get("objective", ""), "description": obj.get("description", "")}


# ---- intelligence ------------------------------------------------------------------------

VALIDITY = ("any", "valid", "expired", "future")


def _validity(obj: Mapping[str, Any], now: int) -> str:
    start = _ts(obj.get("valid_from"))
    end = _ts(obj.get("valid_until"))
    if obj.get("revoked"):
        return "expired"
    if start is not None and start > now:
        return "future"
    if end is not None and end <= now:
        return "expired"
    return "valid"


@dataclass
class Filters:
    value: str = ""
    obs_type: str = ""
    tlp: str = ""
    source: str = ""
    validity: str = "any"


def search_indicators(store: Store, access: Access, names: Names, f: Filters,
                      limit: int = 200) -> tuple[list[dict[str, Any]], bool]:
    """Indicators matching the filters, newest first; `True` when more than `limit` match."""
    now = now_us()
    if f.value:
        rows = [r for r in store.search(f.value, limit=5_000, access=access)
                if r.type == "indicator"]
    else:
        rows = list(store.iter_query(Query(types=["indicator"], access=access)))[::-1]
    level = TLP.parse(f.tlp) if f.tlp else None
    out: list[dict[str, Any]] = []
    for r in rows:
        obj = read(r)
        source = names.of(r.created_by_ref) if r.created_by_ref else r.source
        kinds = pattern_types(obj.get("pattern", ""))
        validity = _validity(obj, now)
        if (
            (level is not None and r.tlp != level)
            or (f.obs_type and f.obs_type not in kinds)
            or (f.source and f.source not in (source, r.source))
            or (f.validity not in ("", "any") and validity != f.validity)
        ):
            continue
        out.append({"id": r.id, "name": r.name or r.id, "pattern": obj.get("pattern", ""),
                    "types": kinds, "tlp": r.tlp, "source": source, "validity": validity,
                    "valid_from": obj.get("valid_from", ""),
                    "valid_until": obj.get("valid_until", ""), "modified": obj.get("modified")})
        if len(out) > limit:
            return out[:limit], True
    return out, False


def sightings_of(store: Store, access: Access, names: Names, stix_id: str
                 ) -> list[SightingView]:
    return [s for s in sightings(store, access, names) if s.indicator_id == stix_id]


def related(store: Store, access: Access, stix_id: str) -> list[dict[str, Any]]:
    """Visible relationships touching `stix_id`, with the other end when visible."""
    out = []
    for r in store.iter_query(Query(types=["relationship"], access=access,
                                    include_revoked=False)):
        rel = read(r)
        if stix_id not in (rel.get("source_ref"), rel.get("target_ref")) \
                or not (rel.get("source_ref") and rel.get("target_ref")):
            continue
        other_id = rel["target_ref"] if rel.get("source_ref") == stix_id else rel["source_ref"]
        other = store.get(other_id, access)
        out.append({"rel": rel, "tlp": r.tlp, "other_id": other_id,
                    "other": other, "outgoing": rel.get("source_ref") == stix_id})
    return out


def incident_core(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The OASIS Incident Core extension of an incident ({} when it has none)."""
    return dict((obj.get("extensions") or {}).get(INCIDENT_CORE) or {})


def incident_scores(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(incident_core(obj).get("scores") or [])


def provenance(versions: list[StoredVersion]) -> list[dict[str, Any]]:
    return [{"version": format_ts(v.version_us), "added": format_ts(v.date_added_us),
             "source": v.source, "channel": v.channel, "collection": v.collection or "",
             "tlp": v.tlp, "latest": v.is_latest} for v in versions]


def consultation(store: Store, cell: str, reader: str, access: Access, campaign_id: str
                 ) -> dict[str, Any] | None:
    """The cell's recommendation for a campaign and its decision log, for a member the cell's
    policy names; None for everyone else.

    The policy is TLP:RED with its readers as audience, and its type is one whose audience
    alone decides (`AUDIENCE_ONLY_TYPES`), so the store serves it to `reader` only when
    the policy names it, even when the node's own member stored it. The facts count only
    the `attributed-to` relationships `access` may see, so the recommendation never rests
    on (nor shows) a confidence hidden from its reader.
    """
    from shieldwall.assess.consultation import (
        ConsultationError,
        facts_from_store,
        load_policy,
        read_log,
        reader_access,
        recommend,
        status_of,
    )

    try:
        policy = load_policy(store, cell=cell, access=reader_access(reader))
    except ConsultationError:
        return None
    try:
        facts = facts_from_store(store, campaign_id, access)
    except ConsultationError as exc:  # e.g. a campaign imported, not correlated here
        return {"unassessed": str(exc)}
    rec = recommend(facts, policy)
    return {"facts": facts, "rec": rec, "status": status_of(store, campaign_id),
            "log": read_log(store, campaign_id)}


# ---- hygiene (the Pledge) ----------------------------------------------------------------


def hygiene(store: Store, access: Access) -> list[dict[str, Any]]:
    """Per member whose posture snapshots the reader may see: the newest index and its
    date, the trend over every snapshot, and the Pledge commitments of the newest one.
    A member sees its own; AMBER+STRICT snapshots only reach the members they name."""
    from shieldwall.pledge.posture import cis_ig1, trends
    from shieldwall.stix.markings import resolve_tlp

    labels: dict[str, str] = cis_ig1()["commitments"]
    out = []
    for member, stored in trends(store, access=access).items():
        snaps = [readable(s) for s in stored]
        first, last = snaps[0], snaps[-1]
        index = float(last.get("x_shieldwall_index", 0.0))
        commitments = last.get("x_shieldwall_commitments") or {}
        out.append({
            "member": member, "id": last["id"], "date": last.get("x_shieldwall_date", ""),
            "index": index, "tlp": resolve_tlp(last, TLP.AMBER_STRICT),
            "audience": list(last.get(AUDIENCE_PROPERTY) or []),
            "delta": round(index - float(first.get("x_shieldwall_index", 0.0)), 1),
            "since": first.get("x_shieldwall_date", ""),
            "trend": [{"date": s.get("x_shieldwall_date", ""),
                       "index": float(s.get("x_shieldwall_index", 0.0))} for s in snaps],
            "commitments": [{"id": c, "label": labels.get(c, c),
                             "score": None if v is None else round(100 * float(v), 1)}
                            for c, v in commitments.items()],
            "checks": {c: v.get("score") for c, v in
                       (last.get("x_shieldwall_checks") or {}).items()},
        })
    return out


def attribution_rankings(store: Store, access: Access, about: str) -> list[dict[str, Any]]:
    """Attribution-support notes about an object, as the viewer may see them: the ranked
    leads with shared and missing techniques, even when no lead was confident enough to
    become an `attributed-to` relationship."""
    found = []
    for row in store.iter_query(Query(types=["note"], access=access)):
        note = read(row)
        ranking = note.get("x_shieldwall_attribution")
        if about in (note.get("object_refs") or ()) and isinstance(ranking, dict):
            found.append({"row": row, "verdict": ranking.get("verdict", ""),
                          "candidates": ranking.get("candidates", [])})
    return sorted(found, key=lambda r: -r["row"].version_us)
