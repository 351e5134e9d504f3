"""Running totals other commands add to, for `/metrics` to read (kept in the store's kv).

Light on purpose (no Prometheus import): `hunt` adds to them at the end of every run.
"""

from __future__ import annotations

import orjson
from sqlalchemy import delete, select

from shieldwall.store import Store
from shieldwall.store.schema import kv

HUNT_KEY = "observe:hunt"  # {"events": n, "seconds": s}, added to by every hunt


def record_hunt(store: Store, events: int, seconds: float) -> None:
    """Add a hunt's events and seconds to the node's totals (what `rate()` reads); in a
    write transaction, so hunts running side by side add up."""
    with store.transaction() as conn:
        text = conn.execute(select(kv.c.value).where(kv.c.key == HUNT_KEY)).scalar()
        held = orjson.loads(text or "{}")
        conn.execute(delete(kv).where(kv.c.key == HUNT_KEY))
        conn.execute(kv.insert().values(key=HUNT_KEY, value=orjson.dumps({
            "events": int(held.get("events", 0)) + int(events),
            "seconds": float(held.get("seconds", 0.0)) + float(seconds)}).decode()))


def hunt_totals(store: Store) -> tuple[int, float]:
    held = orjson.loads(store.kv_get(HUNT_KEY) or "{}")
    return int(held.get("events", 0)), float(held.get("seconds", 0.0))
