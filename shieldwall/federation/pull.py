"""Pulling one collection from one peer: fetch, judge, store, move the cursor.

The cursor (`added_after` = the peer's `X-TAXII-Date-Added-Last` of the last stored page,
plus its `next` token) is saved in the store's kv table *after* each page is stored. A
crash between the two re-fetches one page, which the store finds as duplicates
(id + version): resumed exactly, nothing lost, nothing stored twice.

Two stages overlap: a fetch thread GETs page N+1, parses it and prepares its rows
(canonical JSON, TLP, the arrival rules that need no database) while this thread looks
up what the store already holds for page N and writes it. Measured on 100,000
indicators, a page of 10,000 costs ~100 ms to serve, ~90 ms to parse, ~50 ms to
prepare and ~190 ms to write, so the write is the floor.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select

from shieldwall.federation.rules import Arrival
from shieldwall.policy import Existing
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import now_us
from shieldwall.store import Provenance, Store
from shieldwall.store.prepare import PreparedVersion, Unprepared, prepare
from shieldwall.store.schema import objects
from shieldwall.taxii.client import TaxiiClient

_LOOKUP_CHUNK = 5_000


@dataclass
class PullResult:
    stored: int = 0
    rejected: int = 0  # refused by the arrival rules or by the store; never stored
    last_rejection: str = ""


@dataclass
class _Judged:
    """One fetched page, judged as far as can be without the store."""

    rows: list[PreparedVersion | Unprepared]
    refused: list[tuple[PreparedVersion, str]] = field(default_factory=list)  # row, why
    cursor: dict[str, Any] | None = None  # where to resume after this page is stored


def pull_collection(
    store: Store, client: TaxiiClient, arrival: Arrival, coll: str, key: str, *,
    page_size: int, default_tlp: TLP,
) -> PullResult:
    """Pull `coll` from `arrival.peer` from the cursor saved under `key` until caught up."""
    cursor: dict[str, Any] = orjson.loads(store.kv_get(key) or "{}")
    prov = Provenance(arrival.peer.name, "federation", coll)
    result = PullResult()
    for page in _prefetched(client, arrival, coll, cursor, page_size, default_tlp):
        held, latest = _held(store, [p.id for p in page.rows] + [r.id for r, _ in page.refused])
        echoes = _texts(store, [r for r, _ in page.refused if (r.id, r.version_us) in held])
        for r, why in page.refused:
            if echoes.get((r.id, r.version_us)) != r.text:  # else we hold it as it is: an echo
                _reject(result, r.id, why)
        rows: list[PreparedVersion | Unprepared] = []
        for p in page.rows:
            if isinstance(p, PreparedVersion) and p.id in latest \
                    and (p.id, p.version_us) not in held:
                why = arrival.refusal(orjson.loads(p.text), TLP(p.tlp), latest[p.id])
                if why:
                    _reject(result, p.id, why)
                    continue
            rows.append(p)
        if rows:
            put = store.put_prepared(rows, prov)
            result.stored += put.stored
            for oid, why in put.rejected:
                _reject(result, oid, why)
        if page.cursor is not None:
            store.kv_set(key, orjson.dumps(page.cursor).decode())
    return result


def _reject(result: PullResult, oid: str, why: str) -> None:
    result.rejected += 1
    result.last_rejection = f"{oid}: {why}"[:300]


def _prefetched(
    client: TaxiiClient, arrival: Arrival, coll: str, cursor: dict[str, Any],
    page_size: int, default_tlp: TLP,
) -> Iterator[_Judged]:
    """Judged pages from a fetch thread, at most two ahead of the consumer."""
    pages: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def fetch() -> None:
        after, nxt = cursor.get("added_after"), cursor.get("next")
        try:
            while not stop.is_set():
                page = client.get_objects(coll, added_after=after, next=nxt, limit=page_size)
                after = page.added_last or after
                nxt = page.next if page.more else None
                judged = _judge(page.objects, arrival, default_tlp)
                if page.objects:
                    judged.cursor = {"added_after": after, "next": nxt}
                put(judged)
                if not page.more:
                    break
        except Exception as exc:  # handed to the consumer, which raises it
            put(exc)
            return
        put(None)

    threading.Thread(target=fetch, daemon=True, name=f"pull-{arrival.peer.name}").start()
    try:
        while True:
            item = pages.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()


def _judge(objs: list[dict[str, Any]], arrival: Arrival, default_tlp: TLP) -> _Judged:
    now = now_us()
    out = _Judged([])
    for obj in objs:
        p = prepare(obj, now, default_tlp)
        if isinstance(p, PreparedVersion):
            why = arrival.refusal(obj, TLP(p.tlp))
            if why:
                out.refused.append((p, why))
                continue
        out.rows.append(p)
    return out


def _texts(store: Store, rows: list[PreparedVersion]) -> dict[tuple[str, int], str]:
    """The stored text of these (id, version)s: what a refused delivery is compared with
    (a relay or echo of exactly what we hold is no attack, and is not counted)."""
    if not rows:
        return {}
    o = objects.c
    wanted = {(r.id, r.version_us) for r in rows}
    out: dict[tuple[str, int], str] = {}
    ids = list(dict.fromkeys(r.id for r in rows))
    with store.engine.connect() as conn:
        for i in range(0, len(ids), _LOOKUP_CHUNK):
            q = select(o.id, o.version_us, o.json).where(o.id.in_(ids[i : i + _LOOKUP_CHUNK]))
            for oid, ver, text in conn.execute(q):
                if (oid, ver) in wanted:
                    out[(oid, ver)] = text
    return out


def _held(store: Store, ids: list[str]) -> tuple[set[tuple[str, int]], dict[str, Existing]]:
    """The (id, version) pairs the store holds for `ids`, and each id's latest version."""
    versions: set[tuple[str, int]] = set()
    latest: dict[str, Existing] = {}
    if not ids:
        return versions, latest
    o = objects.c
    unique = list(dict.fromkeys(ids))
    with store.engine.connect() as conn:
        for i in range(0, len(unique), _LOOKUP_CHUNK):
            q = select(o.id, o.version_us, o.is_latest, o.tlp, o.created_by_ref, o.source) \
                .where(o.id.in_(unique[i : i + _LOOKUP_CHUNK]))
            for oid, ver, is_latest, tlp, creator, source in conn.execute(q):
                versions.add((oid, ver))
                if is_latest:
                    latest[oid] = Existing(TLP(tlp), creator, source)
    return versions, latest
