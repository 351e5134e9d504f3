"""The retro-hunt of what arrives (`detect/arrivals.py`), on a real store and real logs.

A node that keeps no telemetry must not read its indicators at all (at ten million objects
the first `serve` read eight million of them for nothing), and a node that keeps telemetry
hunts the new indicators in bounded chunks with the same sightings as in one go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shieldwall.detect.arrivals import CURSOR_KEY, hunt_arrivals
from shieldwall.stix.markings import TLP
from shieldwall.store import Store
from shieldwall.store.types import Provenance, Query
from tests.detect.retro_data import MEMBER, REAL_PATTERNS, indicator, keep_real

IDENTITY = {"type": "identity", "spec_version": "2.1", "id": MEMBER, "name": "cert-test",
            "identity_class": "organization", "created": "2024-01-01T00:00:00.000Z",
            "modified": "2024-01-01T00:00:00.000Z"}
P = Provenance("cert-peer", "taxii")
FOREVER = 40_000  # days: the real logs are years old


def _hunt(store: Store, telemetry: Path, **kw: Any) -> Any:
    return hunt_arrivals(store, telemetry, member="cert-test", identity=IDENTITY,
                         sighting_tlp=TLP.AMBER, since_days=FOREVER, **kw)


def _open(tmp_path: Path, name: str) -> Store:
    return Store.open(f"sqlite:///{tmp_path / name}.db")


def test_no_telemetry_moves_the_cursor_without_reading(tmp_path: Path) -> None:
    store = _open(tmp_path, "n")
    store.put_many([indicator(i, p) for i, p in enumerate(REAL_PATTERNS, 1)], P)
    reads: list[object] = []
    real = store.iter_query
    store.iter_query = lambda *a, **k: reads.append(a) or real(*a, **k)  # type: ignore[method-assign]
    found = _hunt(store, tmp_path / "no-telemetry")
    assert reads == []
    assert found.indicators == 0 and found.objects == []
    assert store.kv_get(CURSOR_KEY) == str(store.newest_seq())
    store.close()


def test_chunks_find_what_one_pass_finds(tmp_path: Path) -> None:
    telemetry = tmp_path / "telemetry"
    keep_real(telemetry)
    indicators = [indicator(i, p) for i, p in enumerate(REAL_PATTERNS, 1)]
    results = []
    for name, chunk in (("whole", 1_000), ("chunked", 3)):
        store = _open(tmp_path, name)
        store.put_many(indicators, P)
        newest = store.newest_seq()
        found = _hunt(store, telemetry, chunk=chunk)
        assert store.kv_get(CURSOR_KEY) == str(newest)  # the sightings come after it
        sighted = sorted(o["sighting_of_ref"] for o in found.objects if o["type"] == "sighting")
        stored = sorted(v.obj()["sighting_of_ref"]
                        for v in store.iter_query(Query(types=["sighting"])))
        assert sighted == stored
        again = _hunt(store, telemetry, chunk=chunk)  # nothing new: nothing hunted again
        assert again.indicators == 0 and again.objects == []
        results.append((found.indicators, found.hits, sighted))
        store.close()
    assert results[0] == results[1]
    indicators_hunted, hits, sighted = results[0]
    assert indicators_hunted == len(REAL_PATTERNS)
    # The real logs hold most patterns' values (not the last two's, see retro_data).
    assert hits > 0 and len(set(sighted)) >= len(REAL_PATTERNS) - 4
