"""MISP JSON events, converted by `misp-stix`: the converter MISP itself ships, so an event reads
the same in Shieldwall as in the member's MISP STIX 2.1 export.

What Shieldwall adds on top of the converter:

- MISP tags are case-insensitive in practice (`TLP:AMBER` arrives from other tools) but
  misp-stix only knows the lower-case taxonomy and silently drops the rest, so TLP tags are
  normalised before conversion.
- misp-stix marks only the report (the event) with the event's TLP; in MISP an event's tags
  govern every attribute in it. Every object converted from an event therefore carries the most
  restrictive of the event's level and its own, so a RED event never yields AMBER indicators.
- TLP marking definitions come out as Shieldwall's TLP 2.0 ids (misp-stix writes TLP 1.0 ids
  for some levels), so one level is one id across the node.
- When the event has no TLP at all, `opts.tlp` is applied; without it the objects stay
  unmarked and the store gives them the node's default.

Events are streamed one at a time from a list or a `{"response": [...]}` API answer (ijson), so a
large restSearch export is never held whole; one event is, as misp-stix needs it whole.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ijson
import orjson

from shieldwall.ingest.base import (
    Format,
    ImportError_,
    Item,
    ReadOptions,
    Rejected,
    register_format,
)
from shieldwall.stix.bounded_json import DepthGuard, TooDeep, loads
from shieldwall.stix.markings import (
    TLP,
    tlp_marking_definition,
    tlp_marking_ref,
    tlp_of_marking_definition,
)


def _tag_tlp(name: str) -> TLP | None:
    if not name.lower().startswith("tlp:"):
        return None
    try:
        return TLP.parse(name)
    except ValueError:
        return None


def _normalise_tags(tags: list[dict[str, Any]] | None) -> TLP | None:
    """Lower-cases TLP tags in place (`TLP:AMBER` -> `tlp:amber`); returns the highest level."""
    found: TLP | None = None
    for tag in tags or ():
        name = tag.get("name") if isinstance(tag, dict) else None
        if not isinstance(name, str):
            continue
        level = _tag_tlp(name)
        if level is None:
            continue
        tag["name"] = "tlp:" + level.short if name.lower() != "tlp:white" else "tlp:white"
        found = level if found is None or level > found else found
    return found


def _prepare(event: dict[str, Any]) -> tuple[dict[str, Any], TLP | None, list[str]]:
    """The bare event, with TLP tags normalised and galaxy clusters misp-stix cannot
    convert taken out; the event's own TLP level; what was taken out, one line each."""
    body = event.get("Event", event)
    if not isinstance(body, dict):
        raise ValueError("not a MISP event: 'Event' is not an object")
    level = _normalise_tags(body.get("Tag"))
    dropped = _drop_clusters_without_uuid(body)
    for attr in body.get("Attribute") or ():
        _normalise_tags(attr.get("Tag"))
        dropped += _drop_clusters_without_uuid(attr)
    for obj in body.get("Object") or ():
        _normalise_tags(obj.get("Tag"))
        for attr in obj.get("Attribute") or ():
            _normalise_tags(attr.get("Tag"))
            dropped += _drop_clusters_without_uuid(attr)
    return body, level, dropped


def _valid_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return bool(value)


def _drop_clusters_without_uuid(holder: dict[str, Any]) -> list[str]:
    """Takes galaxy clusters with no valid `uuid` out of an event or attribute's `Galaxy`.

    misp-stix names a cluster's STIX object by its uuid; one empty uuid (events of
    2018-2019 in PyMISP's fixtures carry some) made it refuse the whole event. The
    cluster's `misp-galaxy:` tag stays on the event as a label; the rest converts.
    """
    dropped: list[str] = []
    galaxies = holder.get("Galaxy")
    if not isinstance(galaxies, list):
        return dropped
    kept_galaxies = []
    for galaxy in galaxies:
        clusters = galaxy.get("GalaxyCluster") if isinstance(galaxy, dict) else None
        if not isinstance(clusters, list):
            kept_galaxies.append(galaxy)
            continue
        kept = [c for c in clusters if isinstance(c, dict) and _valid_uuid(c.get("uuid"))]
        for c in clusters:
            if not (isinstance(c, dict) and _valid_uuid(c.get("uuid"))):
                name = c.get("value") if isinstance(c, dict) else None
                dropped.append(f"{galaxy.get('type') or 'galaxy'} cluster {name!r} has no uuid "
                               f"(uuid {c.get('uuid') if isinstance(c, dict) else None!r}): "
                               "converted without it")
        if kept:
            galaxy["GalaxyCluster"] = kept
            kept_galaxies.append(galaxy)
    holder["Galaxy"] = kept_galaxies
    return dropped


def _quiet_pymisp() -> None:
    """PyMISP logs each value it refuses (several lines, the value with its line breaks)
    to stderr; misp-stix keeps the same message, which the import reports in one line."""
    log = logging.getLogger("pymisp")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())


def _one_line(message: Any) -> str:
    """misp-stix reports some failures with the Python traceback: its first line (what
    failed) and its last (why) are what an analyst needs."""
    lines = [x.strip() for x in str(message).splitlines() if x.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return f"{lines[0].rstrip(':')}: {lines[-1]}"


def convert_event(event: dict[str, Any], opts: ReadOptions) -> Iterator[Item]:
    """STIX 2.1 objects for one MISP event (with or without the `{"Event": ...}` wrapper)."""
    try:
        body, event_level, dropped = _prepare(event)
    except (ValueError, AttributeError) as exc:
        yield Rejected("event", str(exc))
        return
    where = f"event {body.get('uuid') or body.get('info') or '?'}"
    for why in dropped:
        yield Rejected(where, why)
    # Imported here: misp-stix takes ~2.7 s to import, which every `shieldwall import`
    # paid before reading a single file, MISP or not.
    from misp_stix_converter import MISPtoSTIX21Parser

    _quiet_pymisp()
    parser = MISPtoSTIX21Parser()
    try:
        parser.parse_misp_event(body)
    except Exception as exc:  # misp-stix raises many types for malformed events
        yield Rejected(where, f"misp-stix could not convert it: {_one_line(exc)}")
        return
    for key, messages in (parser.errors or {}).items():
        for message in messages:
            yield Rejected(f"event {key}", _one_line(message))
    for key, messages in (parser.warnings or {}).items():
        for message in messages:
            if str(message).startswith("Failed validation"):  # the attribute is left out
                label, _, rest = str(message).partition(":\n")
                yield Rejected(f"event {key}", f"{label}: {rest.rpartition(' - ')[2]}")

    objects = [orjson.loads(o.serialize()) for o in parser.stix_objects]
    ref_to_level: dict[str, TLP] = {}
    for obj in objects:
        if obj["type"] == "marking-definition":
            level = tlp_of_marking_definition(obj)
            if level is not None:
                ref_to_level[obj["id"]] = level
    for obj in objects:
        if obj["type"] in ("report", "grouping"):
            for ref in obj.get("object_marking_refs") or ():
                level = ref_to_level.get(ref)
                if level is not None and (event_level is None or level > event_level):
                    event_level = level
    floor = event_level if event_level is not None else opts.tlp

    used: set[TLP] = set()
    out: list[dict[str, Any]] = []
    for obj in objects:
        if obj["type"] == "marking-definition":
            if obj["id"] not in ref_to_level:
                out.append(obj)  # a marking Shieldwall does not interpret: kept as it came
            continue
        if obj["type"] == "windows-registry-key":
            _full_hive(obj)
        level = _apply_tlp(obj, ref_to_level, floor)
        if level is not None:
            used.add(level)
        out.append(obj)
    for level in sorted(used):
        yield tlp_marking_definition(level)
    yield from out


# STIX 2.1 (6.13) requires the full hive name; MISP analysts write the short one.
_HIVES = {
    "HKLM": "HKEY_LOCAL_MACHINE", "HKCU": "HKEY_CURRENT_USER", "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS", "HKCC": "HKEY_CURRENT_CONFIG",
}


def _full_hive(obj: dict[str, Any]) -> None:
    key = obj.get("key")
    if isinstance(key, str):
        hive, sep, rest = key.partition("\\")
        full = _HIVES.get(hive.upper())
        if full:
            obj["key"] = full + sep + rest


def _apply_tlp(obj: dict[str, Any], ref_to_level: dict[str, TLP], floor: TLP | None) -> TLP | None:
    """Rewrites an object's TLP refs to one TLP 2.0 ref: the most restrictive of its own and the
    event's. Non-TLP refs are kept."""
    own: TLP | None = floor
    others: list[str] = []
    for ref in obj.get("object_marking_refs") or ():
        level = ref_to_level.get(ref)
        if level is None:
            others.append(ref)
        elif own is None or level > own:
            own = level
    for gm in obj.get("granular_markings") or ():
        ref = gm.get("marking_ref")
        if ref in ref_to_level:
            gm["marking_ref"] = tlp_marking_ref(ref_to_level[ref])
    if own is None:
        return None
    obj["object_marking_refs"] = [tlp_marking_ref(own), *others]
    return own


# ---------------------------------------------------------------------------------- reading


def _first_key(path: Path) -> str | None:
    with path.open("rb") as fh:
        for prefix, event, value in ijson.parse(DepthGuard(fh)):
            if prefix == "" and event == "map_key":
                return value
            if prefix == "" and event == "end_map":
                return None
    return None


def _events(path: Path) -> Iterator[dict[str, Any] | Rejected]:
    with path.open("rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        if head[:1] == b"[":
            with path.open("rb") as fh:
                yield from _only_events(ijson.items(DepthGuard(fh), "item", use_float=True))
            return
        if _first_key(path) == "response":
            with path.open("rb") as fh:
                response = ijson.items(DepthGuard(fh), "response.item", use_float=True)
                yield from _only_events(response)
            return
        with path.open("rb") as fh:
            whole = loads(fh.read())
    except TooDeep as exc:
        raise ImportError_(f"{path}: {exc}") from None
    except (ijson.JSONError, orjson.JSONDecodeError) as exc:
        raise ImportError_(f"{path}: malformed JSON ({exc})") from None
    if isinstance(whole, dict) and isinstance(whole.get("response"), list):
        yield from _only_events(whole["response"])
    elif isinstance(whole, dict) and ("Event" in whole or "info" in whole):
        yield whole
    else:
        raise ImportError_(f"{path}: JSON but not a MISP event (no 'Event' or 'response')")


def _only_events(items: Iterable[Any]) -> Iterator[dict[str, Any] | Rejected]:
    for n, item in enumerate(items, 1):
        if isinstance(item, dict) and ("Event" in item or "info" in item):
            yield item
        else:
            yield Rejected(f"item {n}", "not a MISP event (attribute or object search results "
                                        "are not importable; export the events)")


def read_misp(path: Path, opts: ReadOptions) -> Iterator[Item]:
    yield opts.producer
    for event in _events(path):
        if isinstance(event, Rejected):
            yield event
        else:
            yield from convert_event(event, opts)


def sniff_misp(head: bytes, path: Path) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] not in (b"{", b"["):
        return False
    window = text[:4096]
    if b'"Event"' in window:
        return True
    # A restSearch answer: `{"response": [{"Event": ...` (the Event key may be further in).
    if text[:1] == b"{" and window.lstrip(b"{ \t\r\n").startswith(b'"response"'):
        return True
    return _bare_event(text)


# Keys only a MISP event has at its top level. PyMISP writes events without the
# `{"Event": ...}` wrapper (`MISPEvent.to_json()`, its own test fixtures), keys sorted, so
# `Attribute` often comes first and `info` is 100 KB further on.
_EVENT_KEYS = frozenset({"Attribute", "Object", "Orgc", "Org", "Galaxy", "EventReport",
                         "ShadowAttribute", "RelatedEvent", "threat_level_id", "info"})


def _bare_event(head: bytes) -> bool:
    """Is `head` the start of an event (or a list of events) without the wrapper? Its
    top-level keys, read from the first bytes, say so; a STIX object has a `type`."""
    prefix = "item" if head[:1] == b"[" else ""
    keys: set[str] = set()
    try:
        for path, event, value in ijson.parse(head):
            if path == prefix and event == "map_key":
                keys.add(value)
            elif path == prefix and event == "end_map":
                break
    except ijson.JSONError:
        pass  # the head ends mid-file
    return bool(keys & _EVENT_KEYS) and "type" not in keys


register_format(Format(
    name="misp",
    description="MISP JSON events (one event, a list, or a restSearch response), via misp-stix",
    read=read_misp,
    sniff=sniff_misp,
))
