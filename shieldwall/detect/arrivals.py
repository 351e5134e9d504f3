"""Retro-hunting what arrives: every indicator the node newly stores (from a peer, an
import, a case's published findings) is matched once against the telemetry the node
already keeps, and the hits become sightings that federate like any other.

This is what makes a responder's finding protect everyone: a command-and-control address
found in one member's logs and published is looked for, within one federation round, in
every other member's stored months of telemetry, not only in what their sensors see next.
A cursor in the store (`retro-arrivals`: the newest object seq looked at) makes each
indicator cost one hunt; a re-run over the same range merges with the stored sightings
and writes nothing new (`Sightings.objects(stored=...)`).
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


@dataclass
class ArrivalHunt:
    indicators: int = 0  # new indicators hunted
    hits: int = 0
    objects: list[dict[str, Any]] = field(default_factory=list)  # sightings, observed-data

    @property
    def sightings(self) -> int:
        return sum(1 for o in self.objects if o.get("type") == "sighting")


def hunt_arrivals(store: Any, telemetry: Path, *, member: str, identity: dict[str, Any],
                  sighting_tlp: TLP, since_days: int = DEFAULT_SINCE_DAYS,
                  now: int | None = None) -> ArrivalHunt:
    """Hunt the indicators stored since the last call in `telemetry`; store the sightings."""
    from shieldwall.detect.retro import retro_hunt
    from shieldwall.detect.sensor_hunt import SensorHunter
    from shieldwall.store.audience import stored_marking

    now = now_us() if now is None else now
    start = int(store.kv_get(CURSOR_KEY) or 0)
    newest = store.newest_seq()
    result = ArrivalHunt()
    if newest <= start:
        return result
    listed = {i for i, _ in store.tagged(WARNINGLIST_TAG)}
    fresh = [row.obj() for row in store.iter_query(Query(types=["indicator"], after_seq=start))
             if row.is_latest and row.id not in listed]
    if fresh and _has_telemetry(telemetry):
        index = IndicatorIndex()
        index.add_many(fresh, now)
        if len(index):
            result.indicators = len(index)
            sightings = Sightings(identity["id"], sighting_tlp, marking_of=stored_marking(store),
                                  member=member)
            hunter = SensorHunter(index, sightings)
            result.hits = retro_hunt(telemetry, index, hunter, since_days * 86_400_000_000,
                                     now)

            def latest(stix_id: str) -> dict[str, Any] | None:
                v = store.get(stix_id)
                return v.obj() if v is not None else None

            result.objects = sightings.objects(stored=latest)
            if result.objects:
                store.put_many([identity, *result.objects], Provenance(member, "detect"),
                               default_tlp=sighting_tlp)
    store.kv_set(CURSOR_KEY, str(newest))
    return result


def _has_telemetry(root: Path) -> bool:
    return root.is_dir() and any(root.iterdir())


def run_arrivals(stop: threading.Event, store: Any, telemetry: Path, *, member: str,
                 identity: dict[str, Any], sighting_tlp: TLP, interval: float = 2.0) -> None:
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
                                          sighting_tlp=sighting_tlp)
                    if found.hits:
                        log.info("retro-hunt of %d new indicator(s) in stored telemetry: "
                                 "%d hit(s), %d sighting(s)", found.indicators, found.hits,
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
