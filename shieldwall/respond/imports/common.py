"""What every case import shares: stable ids, times, markings, observables, and the list
of objects a converter builds before anything is stored.

Ids are derived from the source and the source's own ids (`deterministic_id`), and times
from the source's own times, so importing the same export again finds every object as a
duplicate: no new case, no new versions. Each object is made by the model's own
constructors (`respond.model`, `respond.evidence`), then given that id and time, so an
imported item is checked exactly as one typed on the command line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from shieldwall.respond.model import MAX_TEXT, Marking, RespondError, link, note, observable
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import format_ts, now_us

_PERSON = re.compile(r"[^A-Za-z0-9._@-]+")
_WORD = re.compile(r"[^a-z0-9-]+")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_HASH_LENGTHS = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}


def text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A source's text, trimmed to what an item holds (None when empty)."""
    if value is None:
        return None
    out = str(value).strip()
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return out or None


def word(value: Any) -> str | None:
    """A source's label as a vocabulary word (`In progress` -> `in-progress`)."""
    out = _WORD.sub("-", str(value or "").strip().lower()).strip("-")[:63]
    return out or None


def person(member: str, user: Any) -> str | None:
    """A source's user as `MEMBER:PERSON` (the importing member's person)."""
    name = _PERSON.sub("-", str(user or "").strip()).strip("-._")[:100]
    return f"{member}:{name}" if name else None


def when(value: Any) -> str | None:
    """A source's time as a STIX timestamp: epoch milliseconds (TheHive), ISO 8601 with or
    without an offset (naive means UTC, as IRIS stores), or a date; None when absent or
    unreadable. Never later than now: a time in the future would make a version no
    later import could follow."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value / 1000, UTC)
        else:
            raw = str(value).strip()
            moment = (datetime.fromisoformat(raw) if "T" in raw or " " in raw
                      else datetime.combine(date.fromisoformat(raw), datetime.min.time()))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    us = int(moment.timestamp() * 1_000_000)
    if us < 0:
        return None
    return format_ts(min(us, now_us()))


def hash_observable(value: str) -> str | None:
    """`file:ALGO=<hex>` for a bare hash, by its length."""
    digest = value.strip()
    algo = _HASH_LENGTHS.get(len(digest))
    return f"file:{algo}={digest.lower()}" if algo and _HEX.match(digest) else None


def listed(doc: Mapping[str, Any], key: str, source: str) -> list[Mapping[str, Any]]:
    """`doc[key]`, a list of objects ([] when absent), else a one-line refusal."""
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise RespondError(f"{source} export: '{key}' is not a list of objects")
    return value


def observable_text(kind: str | None, value: str) -> str | None:
    """`TYPE:VALUE` for a source's IOC of `kind` ("ip", "hash" or a STIX SCO type)."""
    if kind == "ip":
        return f"{'ipv6-addr' if ':' in value else 'ipv4-addr'}:{value}"
    if kind == "hash":
        return hash_observable(value)
    return f"{kind}:{value}" if kind else None


class Builder:
    """The objects of one imported case, in the order they are made."""

    def __init__(self, *, member: str, source: str, case_key: str, fallback_time: str,
                 default_tlp: TLP) -> None:
        self.member = member
        self.source = source  # "thehive" or "iris"
        self.case_key = case_key
        self.fallback_time = fallback_time
        self.default_tlp = default_tlp
        self.case_id = deterministic_id("incident", self.key("case"))
        self.objs: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def key(self, *parts: Any) -> str:
        return "|".join([f"shieldwall-import:{self.source}", self.case_key, *map(str, parts)])

    def marking(self, tlp: TLP | None = None) -> Marking:
        """The item's level (the source's, else the default); at AMBER and above named to
        the importing member, who shares it on as any item of its own."""
        level = tlp if tlp is not None else self.default_tlp
        return Marking(level, (self.member,))

    def settle(self, obj: dict[str, Any], *key: Any, at: Any = None,
               updated: Any = None) -> dict[str, Any]:
        """Give `obj` its stable id and the source's times: created `at`, modified when the
        source last updated it (so a later export of a changed task imports as a new
        version of the same task, and an unchanged one as a duplicate)."""
        ts = when(at) or self.fallback_time
        obj["id"] = deterministic_id(obj["type"], self.key(*key))
        obj["created"] = ts
        obj["modified"] = max(ts, when(updated) or ts)
        for prop in ("first_observed", "last_observed", "collected"):
            if prop in obj:
                obj[prop] = ts
        return obj

    def add(self, obj: dict[str, Any], count_as: str) -> dict[str, Any]:
        """Hold an item of the case and its link to the incident."""
        self.objs += [obj, link(obj, self.case_id)]
        self.counts[count_as] += 1
        return obj

    def note(self, content: str | None, *key: Any, abstract: str | None = None, at: Any = None,
             updated: Any = None, tlp: TLP | None = None, refs: tuple[str, ...] = ()) -> None:
        """A note of the case (nothing when `content` is empty)."""
        if content:
            self.add(self.settle(note(creator=self.member, case_id=self.case_id,
                                      marking=self.marking(tlp), content=content,
                                      abstract=abstract, object_refs=refs), *key, at=at,
                                 updated=updated), "notes")

    def observable(self, kind: str | None, value: str, label: str, details: Mapping[str, Any],
                   *key: Any, at: Any = None, updated: Any = None, tlp: TLP | None = None
                   ) -> str | None:
        """The source's IOC as an observable of the case when Shieldwall has its type
        (returns its id), else as a note holding the value and `details`."""
        mapped = observable_text(kind, value)
        if mapped:
            try:
                obj = observable(mapped, creator=self.member, marking=self.marking(tlp))
            except RespondError:
                obj = None  # a value the source took that is not one: kept as a note
            if obj is not None:
                self.add(self.settle(obj, *key, at=at, updated=updated), "observables")
                return str(obj["id"])
        self.note(self.summary_of({"value": value, "type": label, **details}), *key, "note",
                  abstract=f"IOC ({label or 'untyped'})", at=at, updated=updated, tlp=tlp)
        return None

    def incident(self, inc: dict[str, Any]) -> None:
        self.objs.insert(0, inc)

    def summary_of(self, unmapped: Mapping[str, Any]) -> str | None:
        """A note's text for the source fields Shieldwall has no property for, so the
        import loses nothing the export said about the case."""
        lines = [f"{k}: {v}" for k, v in unmapped.items() if v not in (None, "", [], {})]
        return "\n".join(lines) or None
