"""Observed data in the one shape the evaluator reads, whatever STIX version it came in.

STIX 2.0 observed-data carries its objects inline (`objects`, a dict keyed "0", "1", …); STIX
2.1 refers to SCOs by id (`object_refs`) that travel beside it, loose or in bundles. Both are
accepted in the same list, as the OASIS reference matcher accepts them in its 2.0 and 2.1
modes, so a reader can hand over whatever it produced.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

import numpy as np

from shieldwall.detect.pattern.values import parse_timestamp

# SDO and SRO types: in STIX 2.1 data an object path never selects them (they are not cyber
# observables), as in the reference matcher.
SDO_TYPES_21 = frozenset(
    {
        "attack-pattern", "bundle", "campaign", "course-of-action", "extension-definition",
        "grouping", "identity", "incident", "indicator", "infrastructure", "intrusion-set",
        "language-content", "location", "malware", "malware-analysis", "marking-definition",
        "note", "observed-data", "opinion", "relationship", "report", "threat-actor", "tool",
        "sighting", "vulnerability",
    }
)


class ObservedData:
    """One observed-data SDO: its objects, its time interval and how many times it was seen."""

    __slots__ = ("count", "first", "index", "last", "objects", "sdo")

    def __init__(
        self,
        index: int,
        sdo: dict[str, Any],
        objects: dict[str, Any],
        first: _dt.datetime,
        last: _dt.datetime,
        count: int,
    ) -> None:
        self.index = index
        self.sdo = sdo
        self.objects = objects  # key ("0" or an SCO id) -> object; references resolve here
        self.first = first
        self.last = last
        self.count = count

    @property
    def id(self) -> str | None:
        return self.sdo.get("id")


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MICROSECOND = _dt.timedelta(microseconds=1)


class Timeline:
    """The observations' intervals in integer microseconds, for the observation-expression
    evaluator: `first`, `last` per observation, `ls` the distinct last_observed sorted, `lpos`
    each observation's position in `ls`, and the same as numpy arrays."""

    __slots__ = ("first", "first_array", "last", "last_array", "lpos", "lpos_array", "ls",
                 "ls_array")

    def __init__(self, observations: list[ObservedData]) -> None:
        self.first = [(o.first - _EPOCH) // _MICROSECOND for o in observations]
        self.last = [(o.last - _EPOCH) // _MICROSECOND for o in observations]
        self.ls = sorted(set(self.last))
        rank = {t: i for i, t in enumerate(self.ls)}
        self.lpos = [rank[t] for t in self.last]
        self.first_array = np.array(self.first, dtype=np.int64)
        self.last_array = np.array(self.last, dtype=np.int64)
        self.ls_array = np.array(self.ls, dtype=np.int64)
        self.lpos_array = np.array(self.lpos, dtype=np.int64)


class ObservationSet:
    """Observed data prepared once, then matched against any number of patterns.

    `by_type` lists every root object of each type as (observed-data, key, object), so a
    comparison expression only visits the objects its types can match.
    """

    __slots__ = ("_timeline", "by_type", "observations")

    def __init__(self, observed_data: Iterable[dict[str, Any]]) -> None:
        flat: list[dict[str, Any]] = []
        for item in observed_data:
            if not isinstance(item, dict):
                raise ValueError(f"observed data must be STIX objects (dicts), got {item!r}")
            if item.get("type") == "bundle":
                flat.extend(o for o in item.get("objects") or () if isinstance(o, dict))
            else:
                flat.append(item)
        pool = {
            o["id"]: o
            for o in flat
            if o.get("type") != "observed-data" and isinstance(o.get("id"), str)
        }
        self.observations: list[ObservedData] = []
        self.by_type: dict[str, list[tuple[ObservedData, str, dict[str, Any]]]] = {}
        self._timeline: Timeline | None = None
        for sdo in flat:
            if sdo.get("type") == "observed-data":
                self._add(sdo, pool)

    @property
    def timeline(self) -> Timeline:
        """Computed once, when an observation expression first needs it."""
        if self._timeline is None:
            self._timeline = Timeline(self.observations)
        return self._timeline

    @classmethod
    def of(cls, observed_data: ObservationSet | Iterable[dict[str, Any]]) -> ObservationSet:
        return observed_data if isinstance(observed_data, cls) else cls(observed_data)

    def _add(self, sdo: dict[str, Any], pool: dict[str, Any]) -> None:
        ident = sdo.get("id", f"observed-data #{len(self.observations)}")
        missing = [k for k in ("first_observed", "last_observed", "number_observed")
                   if k not in sdo]
        if missing:
            raise ValueError(f"{ident}: observed-data lacks {', '.join(missing)}")
        count = sdo["number_observed"]
        if type(count) is not int or count < 1:
            raise ValueError(f"{ident}: number_observed must be an integer >= 1, got {count!r}")
        try:
            first = parse_timestamp(sdo["first_observed"])
            last = parse_timestamp(sdo["last_observed"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{ident}: {exc}") from None
        if first > last:
            raise ValueError(f"{ident}: first_observed is after last_observed")

        refs = sdo.get("object_refs")
        inline = sdo.get("objects")
        if isinstance(refs, list):
            objects = {r: pool[r] for r in refs if isinstance(r, str) and r in pool}
            roots = [(k, o) for k, o in objects.items() if o.get("type") not in SDO_TYPES_21]
            if isinstance(sdo.get("id"), str):
                objects.setdefault(sdo["id"], sdo)  # the reference resolves refs to it too
        elif isinstance(inline, dict):
            objects = inline
            roots = [(k, o) for k, o in inline.items() if isinstance(o, dict)]
        else:
            raise ValueError(f"{ident}: observed-data has neither object_refs nor objects")

        obs = ObservedData(len(self.observations), sdo, objects, first, last, count)
        self.observations.append(obs)
        for key, obj in roots:
            obj_type = obj.get("type")
            if isinstance(obj_type, str):
                self.by_type.setdefault(obj_type, []).append((obs, key, obj))
