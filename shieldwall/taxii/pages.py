"""Read-ahead for clients paging a whole collection.

A TAXII client must parse each page before it can ask for the next one (the `next`
token is inside the body), so server and client otherwise take turns: ~25 ms of
SQLite and joining per 5,000-object page on the server, then ~35 ms of JSON parsing
on the client. When a large page is served with `more`, the next page of the same
request is built in a background thread while the client parses, and handed out if
the client asks for it and nothing was written in between.

Safety rests on two things:
- the key holds everything the page depends on besides the database: the endpoint,
  the calling member (name, tier, groups), its `Access` (the TLP view the store
  applies in SQL), the collection and every filter including the cursor. A page is
  only ever served to a request with an identical key, so one member's page is never
  another's, whatever `next` token the second member sends;
- a database generation read *before* the page's query and compared when it is
  handed out: any commit in between, by this process (TAXII, federation) or another
  (`shieldwall intel import`), changes it, and the page is recomputed. SQLite has
  `PRAGMA data_version` for exactly this (on a connection that never writes);
  PostgreSQL's `pg_current_snapshot()` changes whenever a writing transaction starts
  or ends. Any other backend gets no read-ahead.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from shieldwall.store import Store

log = logging.getLogger("shieldwall.taxii")

# A built page not asked for within this many seconds is dropped.
TTL_SECONDS = 30.0
# At most this many built pages are kept (each is at most one MAX_PAGE envelope).
MAX_ENTRIES = 16


@dataclass(frozen=True)
class Built:
    """A response ready to send: body bytes, headers, and where the next page starts."""

    body: bytes
    headers: dict[str, str]
    more: bool
    last_seq: int | None
    count: int


class Generation:
    """A value that changes whenever anything is committed to the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._local = 0  # bumped by this process's own TAXII writes (belt and braces)
        self._conn: sqlite3.Connection | None = None
        self.supported = False
        url = store.engine.url
        if store.dialect == "sqlite" and url.database and url.database != ":memory:" \
                and "mode=memory" not in str(url):
            # Read-only and never used to write: every commit elsewhere changes its value.
            uri = Path(url.database).resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True,
                                         isolation_level=None, check_same_thread=False)
            self.supported = True
        elif store.dialect == "postgresql":
            self.supported = True

    def bump(self) -> None:
        with self._lock:
            self._local += 1

    def current(self) -> Hashable:
        """The generation now; when it cannot be read, a value equal to nothing, so
        that no page built ahead is ever served on a guess."""
        try:
            if self._conn is not None:
                with self._lock:
                    return self._local, self._conn.execute("PRAGMA data_version").fetchone()[0]
            with self.store.engine.connect() as conn:
                snap = conn.execute(text("SELECT pg_current_snapshot()::text")).scalar()
            return self._local, snap
        except Exception:  # the request itself still reads the store and reports errors
            log.exception("cannot read the database generation; not reading ahead")
            return object()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class _Entry:
    future: Future[tuple[Hashable, Built]]
    at: float


class ReadAhead:
    """Pages built ahead of the request that will ask for them, keyed as described above."""

    def __init__(self, store: Store, workers: int = 2) -> None:
        self.generation = Generation(store)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="taxii-ahead")
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # Built ahead, then dropped because a commit came between: on PostgreSQL any
        # commit in the cluster moves the snapshot, so this counts others' writes too.
        self.stale = 0
        self.late = 0  # asked for while still queued: built by the request instead

    @property
    def enabled(self) -> bool:
        return self.generation.supported

    def build(self, key: Hashable, make: Callable[[], Built]) -> Built:
        """The page for `key`: the one built ahead if still valid, else built now."""
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is not None:
            if entry.future.cancel():  # still queued: building it here is no slower
                entry = None
                self.late += 1
            else:
                try:
                    gen, built = entry.future.result()
                except Exception:  # the request below rebuilds it and reports any error
                    log.exception("building a page ahead failed")
                else:
                    if gen == self.generation.current():
                        self.hits += 1
                        return built
                    self.stale += 1
        self.misses += 1
        return make()

    def ahead(self, key: Hashable, make: Callable[[], Built]) -> None:
        """Start building the page for `key` in the background."""
        if not self.enabled:
            return

        def run() -> tuple[Hashable, Built]:
            gen = self.generation.current()  # before the query: a later commit invalidates
            return gen, make()

        now = time.monotonic()
        with self._lock:
            for k in [k for k, e in self._entries.items() if now - e.at > TTL_SECONDS]:
                self._entries.pop(k).future.cancel()
            while len(self._entries) >= MAX_ENTRIES:
                self._entries.popitem(last=False)[1].future.cancel()
            if key not in self._entries:
                self._entries[key] = _Entry(self._pool.submit(run), now)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every page being built ahead is built (tests use it to make the
        interleavings they attack deterministic)."""
        with self._lock:
            futures = [e.future for e in self._entries.values()]
        for f in futures:
            if not f.cancelled():
                f.exception(timeout)

    def invalidate(self) -> None:
        """This process wrote: no page built before now may be served."""
        self.generation.bump()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.generation.close()
