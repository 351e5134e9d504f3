"""Pulling one collection from one peer: fetch, judge, store, move the cursor.

The cursor (`added_after` = the peer's `X-TAXII-Date-Added-Last` of the last stored page,
plus its `next` token) is saved in the store's kv table *after* each page is stored. A
crash between the two re-fetches one page, which the store finds as duplicates
(id + version): resumed exactly, nothing lost, nothing stored twice.

Two stages overlap: a fetch thread GETs page N+1, parses it and prepares its rows
(canonical JSON, TLP, STIX 2.1 validation, the arrival rules that need no database)
while this thread looks up what the store already holds for page N and writes it; past
two full pages a worker process does the fetching (see `_prefetched`). Measured on a
1,000,000-indicator backlog (dev run, load ~5): 30,000 objects/s, of which the store's
`put_prepared` is 22 s of 33 s, so the write is the floor.

A round is bounded whatever the peer answers (`PullLimits`, from the node's config
`federation` section): at most `max_pages` pages (the next round goes on from the saved
cursor), a `next` cursor the peer already gave fails the pull (a peer answering
`more: true` with the same `next` for ever kept a sync looping), and an object larger
than `max_object_bytes` is refused and counted. The client bounds each request (time,
bytes, depth: `taxii.client.Limits`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from shieldwall.federation.rules import Arrival
from shieldwall.policy import HELD_COLUMNS, Existing, held_objects
from shieldwall.stix.bounded_json import oversized
from shieldwall.stix.markings import TLP, declared_tlp
from shieldwall.stix.timestamps import millisecond_copy, now_us
from shieldwall.stix.validate import object_error
from shieldwall.store import Provenance, Store
from shieldwall.store.audience import record_tlp_definitions, stored_tlp_markings
from shieldwall.store.prepare import PreparedVersion, Unprepared, prepare_many
from shieldwall.taxii.client import ObjectsPage, TaxiiClient, TaxiiClientError

WORKER_AFTER = 2  # full pages fetched in a thread before a worker process takes over
# Positions in a prepared row (a worker hands rows over as plain tuples in this order).
_ID, _VER, _TEXT, _TYPE, _TLP = 0, 1, 3, 4, 7


@dataclass
class PullResult:
    """What a pull did; filled page by page, so a pull that fails midway keeps the
    counts of the pages it stored."""

    stored: int = 0
    rejected: int = 0  # refused by the arrival rules or by the store; never stored
    last_rejection: str = ""
    capped: bool = False  # `max_pages` ended the round with more to come
    cursor_note: str = ""  # a saved `next` the peer refused, and where the pull went on


@dataclass(frozen=True)
class PullLimits:
    """How far one round of one collection goes (config `federation`, docs/federation.md)."""

    max_pages: int = 1_000
    max_object_bytes: int = 16 * 1024 * 1024


@dataclass
class _Round:
    """A round's progress, handed to the worker process with the cursor."""

    limits: PullLimits
    pages: int = 0
    cursors: set[tuple[Any, ...]] = field(default_factory=set)


@dataclass
class _Judged:
    """One fetched page, judged as far as can be without the store."""

    rows: list[Any]  # PreparedVersion (or its plain tuple) | Unprepared
    refused: list[tuple[Any, str]] = field(default_factory=list)  # prepared row, why
    cursor: dict[str, Any] | None = None  # where to resume after this page is stored
    more: bool = False  # a full page, and the peer has more
    oversized: list[tuple[str, str]] = field(default_factory=list)  # id, why; not prepared
    capped: bool = False  # the last page of a round cut at `max_pages`
    note: str = ""  # a cursor the peer no longer honoured, dropped before this page


def pull_collection(
    store: Store, client: TaxiiClient, arrival: Arrival, coll: str, key: str, *,
    page_size: int, default_tlp: TLP, limits: PullLimits | None = None,
    result: PullResult | None = None, label: str | None = None,
) -> PullResult:
    """Pull `coll` from `arrival.peer` from the cursor saved under `key` until caught up
    (or `limits.max_pages` pages), adding to `result` page by page: when the pull fails,
    the caller's `result` holds what the pages before the failure did."""
    cursor: dict[str, Any] = orjson.loads(store.kv_get(key) or "{}")
    prov = Provenance(arrival.peer.name, "federation", label or coll)  # the configured name
    result = PullResult() if result is None else result
    round_ = _Round(limits or PullLimits())
    # A peer's object may refer to a custom TLP definition stored earlier: the peer's own
    # or this node's, never another member's (which could lower what this peer delivers).
    markings = stored_tlp_markings(store, {arrival.peer.name, arrival.own})
    for page in _prefetched(client, arrival, coll, cursor, page_size, default_tlp, markings,
                            round_):
        for oid, why in page.oversized:
            _reject(result, oid, why)
        result.capped = page.capped
        result.cursor_note = page.note or result.cursor_note
        held, latest = _held(store, [p[_ID] for p in page.rows]
                             + [r[_ID] for r, _ in page.refused])
        echoes = _texts(store, [r for r, _ in page.refused if (r[_ID], r[_VER]) in held])
        for r, why in page.refused:
            if echoes.get((r[_ID], r[_VER])) != r[_TEXT]:  # else we hold it as is: an echo
                _reject(result, r[_ID], why)
        rows: list[Any] = []
        for p in page.rows:
            if not isinstance(p, Unprepared) and p[_ID] in latest \
                    and (p[_ID], p[_VER]) not in held:
                why = arrival.refusal(orjson.loads(p[_TEXT]), TLP(p[_TLP]), latest[p[_ID]])
                if why:
                    _reject(result, p[_ID], why)
                    continue
            rows.append(p)
        record_tlp_definitions(store, arrival.peer.name, _declared(page))
        if rows:
            put = store.put_prepared(rows, prov)
            result.stored += put.stored
            for oid, why in put.rejected:
                _reject(result, oid, why)
        if page.cursor is not None:
            store.kv_set(key, orjson.dumps(page.cursor).decode())
    return result


def _declared(page: _Judged) -> dict[str, TLP]:
    """The custom TLP levels the page's marking definitions declare, kept for the peer
    (`record_tlp_definitions`) even where the store holds the definition from another.
    Read from the prepared rows' type and text, whichever process judged the page."""
    texts = [p[_TEXT] for p in (*page.rows, *(r for r, _ in page.refused))
             if not isinstance(p, Unprepared) and p[_TYPE] == "marking-definition"]
    return declared_tlp(orjson.loads(t) for t in texts) if texts else {}


def _reject(result: PullResult, oid: str, why: str) -> None:
    result.rejected += 1
    result.last_rejection = f"{oid}: {why}"[:300]


def _prefetched(
    client: TaxiiClient, arrival: Arrival, coll: str, cursor: dict[str, Any],
    page_size: int, default_tlp: TLP, markings: dict[str, TLP], round_: _Round,
) -> Iterator[_Judged]:
    """Judged pages from a fetch thread, at most two ahead of the consumer.

    After `WORKER_AFTER` full pages the thread hands the rest of the backlog to a worker
    process and forwards its pages: fetching, parsing and judging a page costs as much
    CPU as storing it, and in one process the two halves share one interpreter lock
    (100,000 objects: 19,000/s with a thread, against 27,000/s fetching and storing in
    turn without one). Starting the worker costs ~1 s, so a small pull never pays it.
    """
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
        try:
            for n, judged in enumerate(_pages(client, coll, cursor, page_size, arrival,
                                              default_tlp, stop.is_set, markings, round_), 1):
                put(judged)
                if judged.more and n >= WORKER_AFTER and judged.cursor is not None:
                    _forward(put, stop, client, coll, judged.cursor, page_size, arrival,
                             default_tlp, markings, round_)
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


def _pages(
    client: TaxiiClient, coll: str, cursor: dict[str, Any], page_size: int,
    arrival: Arrival, default_tlp: TLP, stopped: Callable[[], bool],
    markings: dict[str, TLP], round_: _Round,
) -> Iterator[_Judged]:
    """Fetch and judge pages from `cursor` until the peer has no more, or the round has
    had `max_pages`. A page that repeats one of this round (the same cursor, and the same
    last object and `X-TAXII-Date-Added-Last`) fails the pull: the peer is looping. The
    same `next` alone is no loop: medallion (the OASIS reference server) names a whole
    paging session by one `next`.

    The cursor: `added_after` is the query's, kept while its `next` tokens are followed
    with the same filters (TAXII 2.1 binds a token to its query; medallion answers 400
    "params changed" otherwise); `added_last` the peer's `X-TAXII-Date-Added-Last` of the
    last page, where the next query starts; `added_after` alone only where the peer gives
    no `next`. A token the peer no longer honours (400: restarted, expired, key rotated)
    is dropped, said in the next page's `note` (`peer list`), and the query starts again
    after the last page stored (what comes twice is a duplicate)."""
    after, nxt = cursor.get("added_after"), cursor.get("next")
    last = cursor.get("added_last") or after
    note = ""
    while not stopped() and round_.pages < round_.limits.max_pages:
        try:
            page = client.get_objects(coll, added_after=after, next=nxt, limit=page_size)
        except TaxiiClientError as exc:
            if nxt is None or exc.status not in (400, 404, 410):  # expired: 400 or gone
                raise
            note = (f"cursor dropped: {str(exc)[:160]}; pulled again after "
                    f"{last or 'the start'}")
            after, nxt = last, None
            continue
        round_.pages += 1
        last = page.added_last or last
        if page.more and page.next:
            nxt = page.next
        else:
            after, nxt = last, None
        if page.more:
            key = _cursor_key(after, nxt, page)
            if key in round_.cursors:
                raise TaxiiClientError(
                    f"{client.base_url}: the peer repeated its next cursor "
                    f"({str(nxt or after)[:60]!r}) after {round_.pages} pages: a cursor that "
                    "does not move would loop for ever; pull stopped")
            round_.cursors.add(key)
        objects, too_large = _sized(page.objects, page.size, round_.limits.max_object_bytes)
        judged = _judge(objects, arrival, default_tlp, markings)
        judged.oversized = too_large
        judged.more = page.more and len(page.objects) >= page_size
        judged.capped = page.more and round_.pages >= round_.limits.max_pages
        if page.objects:
            judged.cursor = {"added_after": after, "next": nxt, "added_last": last}
        judged.note, note = note, ""
        yield judged
        if not page.more:
            return


def _cursor_key(after: str | None, nxt: str | None, page: ObjectsPage) -> tuple[Any, ...]:
    """The cursor a page handed out and what the page ended with: equal twice in a
    round, the peer is answering the same page again."""
    tail = page.objects[-1] if page.objects else None
    mark = (str(tail.get("id")), str(tail.get("modified"))) if isinstance(tail, dict) \
        else None
    return (None if nxt else after, nxt, page.added_last, len(page.objects), mark)


def _sized(objs: list[Any], page_bytes: int, cap: int
           ) -> tuple[list[Any], list[tuple[str, str]]]:
    """`objs` without those whose JSON is larger than `cap` bytes, and those as (id, why),
    before validation or preparation spend anything on them."""
    kept, refused = oversized(objs, page_bytes, cap)
    return kept, [(str(o.get("id") if isinstance(o, dict) else None)[:200],
                   f"larger than {cap:,} bytes ({size:,}); server.max_object_bytes")
                  for o, size in refused]


def _forward(
    put: Callable[[Any], None], stop: threading.Event, client: TaxiiClient, coll: str,
    cursor: dict[str, Any], page_size: int, arrival: Arrival, default_tlp: TLP,
    markings: dict[str, TLP], round_: _Round,
) -> None:
    """Run `_pages` from `cursor` in a worker process and pass its pages on.

    A plain child process reading its job from stdin and writing pickled pages to stdout
    (not multiprocessing: spawn re-imports the parent's main script, a fork of a threaded
    server can inherit held locks). The pipe is the back-pressure; the worker never
    touches the store, and dies on a broken pipe when the puller is gone.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", "from shieldwall.federation.pull import worker_main; "
         "worker_main()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        pickle.dump((client.base_url, client.credentials, client.api_root(), client.limits,
                     coll, cursor, page_size,
                     arrival, int(default_tlp), {k: int(v) for k, v in markings.items()},
                     round_), proc.stdin)
        proc.stdin.close()
        while not stop.is_set():
            try:
                kind, payload = pickle.load(proc.stdout)
            except EOFError:
                raise TaxiiClientError(f"pull worker exited ({proc.wait()})") from None
            if kind == "done":
                return
            if kind == "error":
                raise TaxiiClientError(payload)
            rows, refused, page_cursor, more, oversized, capped, note = payload
            put(_Judged(rows, refused, page_cursor, more, oversized, capped, note))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def worker_main() -> None:
    """The worker process: pages as plain tuples (cheaper to pickle than named ones)."""
    base_url, creds, api, limits, coll, cursor, page_size, arrival, tlp, known, round_ = \
        pickle.load(sys.stdin.buffer)
    markings = {k: TLP(v) for k, v in known.items()}
    out = sys.stdout.buffer
    client = TaxiiClient(base_url, creds, limits=limits, api=api)
    try:
        for j in _pages(client, coll, cursor, page_size, arrival, TLP(tlp), lambda: False,
                        markings, round_):
            rows = [r if isinstance(r, Unprepared) else tuple(r) for r in j.rows]
            refused = [(tuple(r), why) for r, why in j.refused]
            pickle.dump(("page", (rows, refused, j.cursor, j.more, j.oversized, j.capped,
                                  j.note)),
                        out, protocol=5)
            out.flush()
        pickle.dump(("done", None), out)
    except BrokenPipeError:
        os._exit(0)
    except Exception as exc:
        pickle.dump(("error", str(exc) or type(exc).__name__), out)
    finally:
        with contextlib.suppress(BrokenPipeError):
            out.flush()
        client.close()


def _judge(objs: list[dict[str, Any]], arrival: Arrival, default_tlp: TLP,
           markings: dict[str, TLP] | None = None) -> _Judged:
    """Prepare and judge one page. `markings`: custom TLP marking definitions known so far
    from this peer and this node (the store's, earlier pages'); this page's own are added
    to it, so an object marked with a producer's own "TLP:RED" definition is judged RED,
    not the default. Where a definition is already known, the stricter level wins:
    re-sending a stored definition's id with a lower level cannot lower what it marks
    (as on the TAXII server)."""
    markings = declared_tlp(objs, {} if markings is None else markings)
    out = _Judged([])
    rows = prepare_many(objs, now_us(), default_tlp, markings or None)
    for obj, p in zip(objs, rows, strict=True):
        if isinstance(p, PreparedVersion):
            # The STIX 2.1 schemas and pattern grammar, as `shieldwall import` applies
            # them: a peer's object reaches detection and the dashboard like an imported
            # one. Refused like an arrival rule's refusal, so an echo of what we hold is
            # not counted and a bad object never holds the cursor back.
            why = object_error(millisecond_copy(obj))
            if why:
                out.refused.append((p, f"invalid STIX 2.1: {why}"))
                continue
            why = arrival.refusal(obj, TLP(p.tlp))
            if why:
                out.refused.append((p, why))
                continue
        out.rows.append(p)
    return out


def _texts(store: Store, rows: list[Any]) -> dict[tuple[str, int], str]:
    """The stored text of these (id, version)s: what a refused delivery is compared with
    (a relay or echo of exactly what we hold is no attack, and is not counted)."""
    if not rows:
        return {}
    wanted = {(r[_ID], r[_VER]) for r in rows}
    found = store.rows_by_ids(list(dict.fromkeys(r[_ID] for r in rows)),
                              ("id", "version_us", "json"))
    return {(oid, ver): text for oid, ver, text in found if (oid, ver) in wanted}


def _held(store: Store, ids: list[str]) -> tuple[set[tuple[str, int]], dict[str, Existing]]:
    """The (id, version) pairs the store holds for `ids`, and what it holds of each id
    (latest level; the first version's creator and deliverer, who alone version it)."""
    if not ids:
        return set(), {}
    held = held_objects(store.rows_by_ids(list(dict.fromkeys(ids)), HELD_COLUMNS))
    return {(oid, v) for oid, e in held.items() for v in e.versions}, held
