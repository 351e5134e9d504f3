"""Hits become STIX sightings, aggregated per indicator per time window, each explained.

A million hits of one indicator in one hour make one sighting with `count` 1,000,000. Its id
is derived from (member, indicator, window), so a later hunt over the same window, or `watch`
adding hits, writes a new version of the same sighting rather than a second one. A sighting
refers to up to `max_refs` observed-data objects (with their SCOs) and explains its first hits
in `x_shieldwall_explanation`: which atom of the pattern matched which field, with which value,
in which file at which line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import (
    AUDIENCE_PROPERTY,
    TLP,
    audience_property,
    narrowest_audience,
    tlp_marking_ref,
)
from shieldwall.stix.timestamps import format_ts, now_us

HOUR_US = 3_600 * 1_000_000
Marking = tuple[TLP, tuple[str, ...], str]  # level, audience, deliverer
EXPLANATION = "x_shieldwall_explanation"


@dataclass
class Hit:
    indicator_id: str
    indicator_name: str
    pattern: str
    ts_us: int
    # Observed-data with embedded objects, or a function that builds it: only the first
    # `max_refs` hits of a window keep one, so the rest never pay for building it.
    observed: dict[str, Any] | Callable[[], dict[str, Any]]
    atom: str
    field: str
    value: str
    file: str
    line: int
    # A sensor's own alert line (Zeek intel.log, a Suricata alert), when a sensor matched.
    sensor_line: str = ""


@dataclass
class _Window:
    indicator_id: str
    name: str
    pattern: str
    start_us: int
    count: int = 0
    first_us: int = 0
    last_us: int = 0
    observed: list[dict[str, Any]] = field(default_factory=list)
    explanations: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""


def _sco_id(obj: dict[str, Any], salt: str = "") -> str:
    key = {k: v for k, v in obj.items() if not k.endswith(("_ref", "_refs"))}
    return deterministic_id(obj["type"], canonical_json(key) + salt)


def observed_data_objects(od: dict[str, Any], created_by: str,
                          salt: str = "") -> list[dict[str, Any]]:
    """An observed-data with embedded `objects` as STIX 2.1: SCOs plus observed-data/object_refs.

    `salt` (a narrower marking than the node's own) gives the objects ids of their own:
    the same address seen for a GREEN and a RED indicator is then two objects, each with
    its marking, never one id with two contents."""
    embedded: dict[str, dict[str, Any]] = od.get("objects") or {}
    ids = {k: _sco_id(o, salt) for k, o in embedded.items()}
    scos = []
    for k, o in embedded.items():
        sco = {"spec_version": "2.1", "id": ids[k]} | {
            p: (ids.get(v, v) if p.endswith("_ref") else
                [ids.get(x, x) for x in v] if p.endswith("_refs") and isinstance(v, list) else v)
            for p, v in o.items()
        }
        scos.append(sco)
    ref_ids = [ids[k] for k in embedded]
    body = {"first_observed": od["first_observed"], "last_observed": od["last_observed"],
            "number_observed": od.get("number_observed", 1), "object_refs": ref_ids}
    oid = od.get("id") if not salt and not str(od.get("id", "")).startswith(
        "observed-data--00000000") else None
    out = {
        "type": "observed-data",
        "spec_version": "2.1",
        "id": oid or deterministic_id("observed-data", canonical_json(body) + salt),
        "created": od["first_observed"],
        "modified": od["first_observed"],
        "created_by_ref": created_by,
        **body,
    }
    return [*scos, out]


class Sightings:
    """Aggregates hits; `objects()` returns the sightings (and their observed-data) to store."""

    def __init__(self, member_identity: str, tlp: TLP, *,
                 marking_of: Callable[[str], Iterable[Marking]] | None = None,
                 member: str = "",
                 window_us: int = HOUR_US, max_refs: int = 10,
                 max_explanations: int = 5) -> None:
        """`tlp` is the node's floor for sightings; `marking_of` (usually
        `store.audience.stored_marking`) gives each indicator's own marking, so a sighting,
        which repeats the indicator's value, is never wider than the indicator; `member`
        (this node's) stays in any audience. Every command that stores sightings passes
        it; without it (indicators held only in memory, as in the benchmarks) the floor
        is all that is known."""
        self.identity = member_identity
        self.tlp = tlp
        self.marking_of = marking_of
        self.member = member
        self.window_us = window_us
        self.max_refs = max_refs
        self.max_explanations = max_explanations
        self.windows: dict[tuple[str, int], _Window] = {}
        self.dirty: set[tuple[str, int]] = set()
        self.hits = 0

    def add(self, hit: Hit) -> None:
        start = hit.ts_us - hit.ts_us % self.window_us
        key = (hit.indicator_id, start)
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = _Window(hit.indicator_id, hit.indicator_name, hit.pattern,
                                            start, first_us=hit.ts_us, last_us=hit.ts_us,
                                            created=format_ts(now_us()))
        w.count += 1
        self.hits += 1
        w.first_us = min(w.first_us, hit.ts_us)
        w.last_us = max(w.last_us, hit.ts_us)
        if len(w.observed) < self.max_refs:
            od = hit.observed
            w.observed.append(od() if callable(od) else od)
        if len(w.explanations) < self.max_explanations:
            w.explanations.append({
                "pattern": hit.pattern, "atom": hit.atom, "field": hit.field,
                "value": hit.value, "file": hit.file, "line": hit.line,
                "observed_at": format_ts(hit.ts_us),
            } | ({"sensor_line": hit.sensor_line} if hit.sensor_line else {}))
        self.dirty.add(key)

    def count_only(self, indicator_id: str, ts_us: int) -> bool:
        """Count a hit in its window when the window needs nothing more of it (its
        observed-data and explanations are full), without building the `Hit`: a sensor's
        alert log repeats a few indicators a million times (bench/sensors_bench.py).
        False when the window wants the hit's details: then `add` it."""
        start = ts_us - ts_us % self.window_us
        key = (indicator_id, start)
        w = self.windows.get(key)
        if w is None or len(w.observed) < self.max_refs or (
                len(w.explanations) < self.max_explanations):
            return False
        w.count += 1
        self.hits += 1
        if ts_us < w.first_us:
            w.first_us = ts_us
        if ts_us > w.last_us:
            w.last_us = ts_us
        self.dirty.add(key)
        return True

    def is_full(self, indicator_id: str, ts_us: int) -> bool:
        """Does the window of a hit at `ts_us` take counts alone (`count_only`'s rule)?"""
        w = self.windows.get((indicator_id, ts_us - ts_us % self.window_us))
        return w is not None and len(w.observed) >= self.max_refs and \
            len(w.explanations) >= self.max_explanations

    def count_many(self, indicator_id: str, start_us: int, n: int, first_us: int,
                   last_us: int) -> None:
        """Add `n` hits, the earliest at `first_us` and the latest at `last_us`, to the full
        window starting at `start_us` at once (a sensor's alert lines summed as read)."""
        key = (indicator_id, start_us)
        w = self.windows[key]
        w.count += n
        self.hits += n
        w.first_us = min(w.first_us, first_us)
        w.last_us = max(w.last_us, last_us)
        self.dirty.add(key)

    def by_indicator(self) -> dict[str, tuple[str, int, int]]:
        """indicator id -> (name, hits, sightings)."""
        out: dict[str, tuple[str, int, int]] = {}
        for w in self.windows.values():
            name, hits, n = out.get(w.indicator_id, (w.name, 0, 0))
            out[w.indicator_id] = (name, hits + w.count, n + 1)
        return out

    def sighting_id(self, w: _Window) -> str:
        return deterministic_id(
            "sighting", f"{self.identity}|{w.indicator_id}|{w.start_us}|{self.window_us}")

    def objects(self, only_changed: bool = True,
                stored: Callable[[str], dict[str, Any] | None] | None = None,
                ) -> list[dict[str, Any]]:
        """Sightings (new versions for windows that changed) with their observed-data.

        `stored` (a retro-hunt's lookup of the latest stored version by id) makes a recount
        idempotent: a retro-hunt recounts every hit of its time range, so a window is merged
        with what is stored (count and last_seen the larger, first_seen the earlier, refs and
        explanations the union, capped) and no version is written when nothing changed.
        """
        keys = sorted(self.dirty) if only_changed else sorted(self.windows)
        self.dirty = set()
        out: list[dict[str, Any]] = []
        for key in keys:
            w = self.windows[key]
            level, audience = narrowest_audience(
                self.marking_of(w.indicator_id) if self.marking_of else (), self.tlp)
            marking = [tlp_marking_ref(level)]
            named = audience_property(audience, self.member)
            salt = ""
            if level != self.tlp or named:
                salt = f"|{level.short}|{','.join(named.get(AUDIENCE_PROPERTY, ()))}"
            objs_w: list[dict[str, Any]] = []
            od_refs: list[str] = []
            for od in w.observed:
                objs = observed_data_objects(od, self.identity, salt)
                for o in objs:
                    o["object_marking_refs"] = marking
                    o.update(named)
                    if o["type"] == "observed-data":
                        od_refs.append(o["id"])
                objs_w.extend(objs)
            sighting: dict[str, Any] = {
                "type": "sighting",
                "spec_version": "2.1",
                "id": self.sighting_id(w),
                "created": w.created,
                "modified": max(format_ts(now_us()), w.created),
                "created_by_ref": self.identity,
                "sighting_of_ref": w.indicator_id,
                "where_sighted_refs": [self.identity],
                "observed_data_refs": list(dict.fromkeys(od_refs)),
                "count": w.count,
                "first_seen": format_ts(w.first_us),
                "last_seen": format_ts(w.last_us),
                "summary": False,
                "object_marking_refs": marking,
                **named,
                EXPLANATION: w.explanations,
            }
            old = stored(sighting["id"]) if stored is not None else None
            if old is not None:
                merged = self._merge(old, sighting)
                if merged is None:
                    continue  # the recount found nothing the stored version lacks
                sighting = merged
            out.extend(objs_w)
            out.append(sighting)
        return out

    def _merge(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
        """`new` merged into the stored `old`; None when the merge equals `old`."""
        explanations = list(old.get(EXPLANATION) or [])
        for e in new[EXPLANATION]:
            if e not in explanations and len(explanations) < self.max_explanations:
                explanations.append(e)
        refs = list(old.get("observed_data_refs") or [])
        for r in new["observed_data_refs"]:
            if r not in refs and len(refs) < self.max_refs:
                refs.append(r)
        merged = old | {
            "count": max(int(old.get("count", 0)), new["count"]),
            "first_seen": min(old.get("first_seen", new["first_seen"]), new["first_seen"]),
            "last_seen": max(old.get("last_seen", new["last_seen"]), new["last_seen"]),
            "observed_data_refs": refs,
            "object_marking_refs": new["object_marking_refs"],
            EXPLANATION: explanations,
        }
        merged.pop(AUDIENCE_PROPERTY, None)
        if AUDIENCE_PROPERTY in new:
            merged[AUDIENCE_PROPERTY] = new[AUDIENCE_PROPERTY]
        if merged == old:
            return None
        merged["modified"] = max(new["modified"], old.get("modified", ""))
        return merged
