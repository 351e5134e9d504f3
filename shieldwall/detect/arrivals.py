"""Retro-hunting what arrives: every indicator the node newly stores (from a peer, an
import, a case's published findings) is matched once against the telemetry the node
already keeps, and the hits become sightings that federate like any other.

This is what makes a responder's finding protect everyone: a command-and-control address
found in one member's logs and published is looked for, within one federation round, in
every other member's stored months of telemetry, not only in what their sensors see next.
A cursor in the store (`retro-arrivals`: the newest object seq looked at) makes each
indicator cost one hunt; a re-run over the same range merges with the stored sightings
and writes nothing new (`Sightings.objects(stored=...)`).

Blind sets that arrive are looked for the same way when the caller hands in how
(`blind`: `blind.retro.ArrivedSets`, which `serve` and `sync` build with the peers'
credentials, since resolving a value asks the set's owner): the same cursor covers them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldwall.detect.index import WARNINGLIST_TAG, IndicatorIndex
from shieldwall.detect.sightings import Sightings
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import now_us
from shieldwall.store.types import Provenance, Query

log = logging.getLogger("shieldwall.detect")

CURSOR_KEY = "retro-arrivals"
# How far back a new indicator is looked for; summaries make the span cheap.
DEFAULT_SINCE_DAYS = 90
# New indicators hunted at once (an index of 100,000 is ~100 MB).
CHUNK = 100_000


@dataclass
class ArrivalHunt:
    indicators: int = 0  # new indicators hunted
    hits: int = 0  # plain and blind
    blind_sets: int = 0  # new blind sets hunted
    blind_hits: int = 0
    blind_failed: dict[str, str] = field(default_factory=dict)  # set id -> why not resolved
    objects: list[dict[str, Any]] = field(default_factory=list)  # sightings, observed-data

    @property
    def sightings(self) -> int:
        return sum(1 for o in self.objects if o.get("type") == "sighting")


def hunt_arrivals(store: Any, telemetry: Path, *, member: str, identity: dict[str, Any],
                  sighting_tlp: TLP, since_days: int = DEFAULT_SINCE_DAYS,
                  now: int | None = None, chunk: int = CHUNK,
                  blind: Any = None) -> ArrivalHunt:
    """Hunt the indicators stored since the last call in `telemetry`; store the sightings.
    With `blind` (`blind.retro.ArrivedSets`), the blind sets stored since then too.

    With no telemetry kept, nothing is read: the cursor moves to the newest object (a
    node of ten million objects would otherwise read every indicator at its first start).
    Otherwise the new indicators are hunted `chunk` at a time, the cursor moved after each,
    so memory stays bounded and a stopped node resumes where it was."""
    now = now_us() if now is None else now
    start = int(store.kv_get(CURSOR_KEY) or 0)
    newest = store.newest_seq()
    result = ArrivalHunt()
    if newest <= start:
        return result
    if not _has_telemetry(telemetry):
        store.kv_set(CURSOR_KEY, str(newest))
        return result
    if blind is not None:  # first: the chunks below move the cursor as they go
        _hunt_blind(store, telemetry, blind, start, newest, result, member, identity,
                    since_days, now)
    listed: set[str] | None = None
    fresh: list[dict[str, Any]] = []
    for row in store.iter_query(Query(types=["indicator"], after_seq=start)):
        if row.seq > newest:
            break
        if row.is_latest:
            fresh.append(row.obj())
        if len(fresh) >= chunk:
            listed = _hunt_chunk(store, telemetry, fresh, listed, result, member, identity,
                                 sighting_tlp, since_days, now)
            fresh = []
            store.kv_set(CURSOR_KEY, str(row.seq))
    if fresh:
        _hunt_chunk(store, telemetry, fresh, listed, result, member, identity, sighting_tlp,
                    since_days, now)
    store.kv_set(CURSOR_KEY, str(newest))
    return result


def _hunt_blind(store: Any, telemetry: Path, blind: Any, start: int, newest: int,
                result: ArrivalHunt, member: str, identity: dict[str, Any],
                since_days: int, now: int) -> None:
    """The blind sets stored in (start, newest], matched against the kept telemetry."""
    arrived = {row.id for row in store.iter_query(Query(types=list(blind.types),
                                                        after_seq=start))
               if row.seq <= newest and row.is_latest}
    if not arrived:
        return
    found = blind(store, telemetry, arrived, member=member, identity=identity,
                  since_us=since_days * 86_400_000_000, now=now)
    result.blind_sets += found.sets
    result.blind_hits += found.hits
    result.hits += found.hits
    result.blind_failed.update(found.failed or {})
    result.objects += found.objects or []
    for why in dict.fromkeys((found.failed or {}).values()):
        log.warning("retro-hunt of a new blind set: not matched against the set of %s; "
                    "'shieldwall hunt --since' matches it later", why)


def _hunt_chunk(store: Any, telemetry: Path, fresh: list[dict[str, Any]],
                listed: set[str] | None, result: ArrivalHunt, member: str,
                identity: dict[str, Any], sighting_tlp: TLP, since_days: int,
                now: int) -> set[str]:
    """Hunt `fresh` (less those on warning lists) and store the sightings; the warning-
    listed ids, read at the first chunk, are returned for the next."""
    from shieldwall.detect.retro import retro_hunt
    from shieldwall.detect.sensor_hunt import SensorHunter
    from shieldwall.store.audience import stored_marking

    if listed is None:
        listed = {i for i, _ in store.tagged(WARNINGLIST_TAG)}
    index = IndicatorIndex()
    index.add_many([o for o in fresh if o["id"] not in listed], now)
    if not len(index):
        return listed
    result.indicators += len(index)
    sightings = Sightings(identity["id"], sighting_tlp, marking_of=stored_marking(store),
                          member=member)
    hunter = SensorHunter(index, sightings)
    result.hits += retro_hunt(telemetry, index, hunter, since_days * 86_400_000_000, now)

    def latest(stix_id: str) -> dict[str, Any] | None:
        v = store.get(stix_id)
        return v.obj() if v is not None else None

    objects = sightings.objects(stored=latest)
    if objects:
        store.put_many([identity, *objects], Provenance(member, "detect"),
                       default_tlp=sighting_tlp)
        result.objects += objects
    return listed


def _has_telemetry(root: Path) -> bool:
    return root.is_dir() and any(root.iterdir())


def run_arrivals(stop: threading.Event, store: Any, telemetry: Path, *, member: str,
                 identity: dict[str, Any], sighting_tlp: TLP, interval: float = 2.0,
                 blind: Any = None) -> None:
    """`hunt_arrivals` whenever the store has grown, until `stop` (inside `serve`): a
    published finding is hunted within `interval` seconds of its arrival."""
    watch = store.seq_watch()
    last = -1
    try:
        while not stop.is_set():
            try:
                seq = watch.newest()
                if seq != last:
                    last = seq
                    found = hunt_arrivals(store, telemetry, member=member, identity=identity,
                                          sighting_tlp=sighting_tlp, blind=blind)
                    if found.hits:
                        log.info("retro-hunt of %d new indicator(s) and %d blind set(s) in "
                                 "stored telemetry: %d hit(s), %d sighting(s)",
                                 found.indicators, found.blind_sets, found.hits,
                                 found.sightings)
            except Exception as exc:  # a bad telemetry file must not stop the loop
                log.warning("retro-hunt of new indicators failed: %s: %s",
                            type(exc).__name__, exc)
            stop.wait(interval)
    finally:
        watch.close()


def start_in_background(store: Any, telemetry: Path, **kw: Any) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_arrivals, args=(stop, store, telemetry), kwargs=kw,
                     daemon=True, name="retro-arrivals").start()
    return stop
