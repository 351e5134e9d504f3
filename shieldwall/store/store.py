"""The Store API: put, get, latest, versions, query with keyset cursors.

Every write is a batch in one transaction: a killed process loses at most the batch it
had not committed, and re-running the same import finds the committed versions as
duplicates. Writers are serialised (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory
lock) so that `seq` order, `date_added` order and commit order are the same order:
a reader paging by `seq` can never miss a row that commits later with a smaller key.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.pool import NullPool

from shieldwall.errors import ShieldwallError
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import now_us
from shieldwall.stix.values import spellings
from shieldwall.store.prepare import PreparedVersion, Unprepared, prepare_many
from shieldwall.store.schema import audience, kv, metadata, objects, tags
from shieldwall.store.types import (
    Access,
    ObjectResult,
    Page,
    PageRow,
    Provenance,
    PutResult,
    Query,
    StoredVersion,
    reject,
)
from shieldwall.store.where import Where, add_access, where_of
from shieldwall.store.write import CHUNK as _LOOKUP_CHUNK
from shieldwall.store.write import INSERT_COLUMNS, BatchWriter, select_by_ids, write_batch

# Ids a `linked` query asks PostgreSQL about (see `Store.linked`).
_PG_LINKED_CHUNK = 4
_PG_WRITE_LOCK = 0x5348_4C44  # "SHLD": one advisory lock id for all writers of a node


class StoreError(ShieldwallError):
    """A store operation that cannot proceed; the message says what to do."""


_ALL_COLUMNS = ", ".join("o." + c for c in (
    "seq", "id", "type", "spec_version", "version_us", "date_added_us", "is_latest", "revoked",
    "tlp", "created_by_ref", "name", "source", "channel", "collection", "json",
))


def _row(r: Any) -> StoredVersion:
    return StoredVersion(
        r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7]), TLP(r[8]), r[9], r[10],
        r[11], r[12], r[13], r[14],
    )


class Store:
    """The node's one source of truth. Open with `Store.open(url)`; safe across threads."""

    def __init__(self, engine: Engine, write_engine: Engine | None = None) -> None:
        self.engine = engine
        # Writes go through one kept connection (see `open`); reads use `engine`.
        self.write_engine = write_engine or engine
        self.dialect = engine.dialect.name
        self._local_lock = threading.Lock()

    # ---- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, pooled: bool = False) -> Store:
        """`pooled`: keep SQLite connections open between uses (a long-running server;
        opening one costs ~1-3 ms, more than a whole indexed TAXII read)."""
        write_engine = None
        if url.startswith("sqlite"):
            memory = ":memory:" in url
            engine = (
                create_engine(url, pool_size=16, max_overflow=16) if pooled and not memory
                else create_engine(url, poolclass=NullPool if not memory else None)
            )
            _tune_sqlite(engine)
            if not pooled and not memory:
                # One write connection kept open for the Store's life: closing the last
                # connection to a WAL database checkpoints and deletes the WAL, which cost
                # ~50 ms after every batch of an import (more than the batch's inserts).
                write_engine = create_engine(url, pool_size=1, max_overflow=0)
                _tune_sqlite(write_engine)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)
            _tune_postgresql(engine)
        store = cls(engine, write_engine)
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest revision in place (Alembic)."""
        from shieldwall.store.migrate import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
        self.engine.dispose()

    # ---- writing -------------------------------------------------------------------

    def put(self, obj: dict[str, Any], provenance: Provenance, **kw: Any) -> PutResult:
        return self.put_many([obj], provenance, **kw)

    def put_many(
        self,
        objs: Iterable[dict[str, Any]],
        provenance: Provenance,
        *,
        default_tlp: TLP = TLP.AMBER,
        tlp_overrides: dict[str, TLP] | None = None,
        batch_size: int = 5_000,
        details: bool = False,
    ) -> PutResult:
        """Store objects in batches of `batch_size`, each batch atomic.

        `tlp_overrides` maps custom marking-definition ids (from the same bundle or
        feed) to their TLP level.
        """
        total = PutResult()
        batch: list[dict[str, Any]] = []
        now = now_us()
        for obj in objs:
            batch.append(obj)
            if len(batch) >= batch_size:
                rows = prepare_many(batch, now, default_tlp, tlp_overrides)
                total.merge(self.put_prepared(rows, provenance, details=details))
                batch = []
        if batch:
            rows = prepare_many(batch, now, default_tlp, tlp_overrides)
            total.merge(self.put_prepared(rows, provenance, details=details))
        return total

    def put_prepared(
        self,
        batch: Sequence[PreparedVersion | Unprepared | tuple[Any, ...]],
        prov: Provenance,
        *,
        details: bool = False,
    ) -> PutResult:
        """Write one batch of rows from `store.prepare` (`prepare_many`), in one transaction.

        A row may also be a plain tuple in PreparedVersion's field order (what an import
        worker hands over); an `Unprepared` is reported as rejected.
        """
        result = PutResult()
        prepared: list[Any] = []
        for p in batch:
            if isinstance(p, Unprepared):
                reject(result, p.id, p.version, p.reason, details)
            else:
                prepared.append(p)
        if not prepared:
            return result
        with self.transaction() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                write_batch(BatchWriter(cur, self.dialect), prepared, prov, result, details,
                            now_us())
            finally:
                cur.close()
        return result

    def transaction(self) -> _WriteTxn:
        """A write transaction serialised with every object write, for a room's own
        tables beside the objects (the correlation index, the consultation log): their
        rows then commit in the same order as the objects they speak of."""
        return _WriteTxn(self)

    # ---- reading -------------------------------------------------------------------

    def get(self, stix_id: str, access: Access | None = None) -> StoredVersion | None:
        """The latest version of an object, or None (also when `access` hides it)."""
        page = self.query(Query(ids=[stix_id], access=access, limit=1))
        return page.rows[0] if page.rows else None

    def get_json(self, stix_id: str) -> str | None:
        row = self.get(stix_id)
        return row.json if row else None

    def versions(self, stix_id: str, access: Access | None = None) -> list[StoredVersion]:
        """All stored versions of an object, oldest first."""
        q = Query(ids=[stix_id], versions="all", access=access)
        rows = self.query(q).rows
        return sorted(rows, key=lambda r: r.version_us)

    def query(self, q: Query) -> Page:
        rows, more = self._read(q, _ALL_COLUMNS)
        return Page([_row(r) for r in rows], more)

    def iter_query(self, q: Query, page_size: int = 5_000) -> Iterator[StoredVersion]:
        """Every matching row, page by page: bounded memory for exports of any size."""
        cursor = q.after_seq
        remaining = q.limit
        while True:
            size = page_size if remaining is None else min(page_size, remaining)
            if size <= 0:
                return
            page = self.query(_replace(q, after_seq=cursor, limit=size))
            yield from page.rows
            if remaining is not None:
                remaining -= len(page.rows)
            if not page.more:
                return
            cursor = page.next_seq

    def linked(self, ids: Iterable[str], access: Access | None = None
               ) -> Iterator[StoredVersion]:
        """The latest relationships with one end among `ids`, through the end indexes of
        migration 0009: a walk of the graph costs what its links cost, not a scan.

        PostgreSQL is asked a few ids a query: with more, its planner leaves the end
        indexes for a scan of every object (3,780 cases, 400,682 objects, ANALYZEd: links
        of 250 requests 6.8 s in chunks of 250, 0.37 s in chunks of 4; of 250 cases 14.1
        s against 0.94 s). SQLite keeps one query per 250 ids (82 ms against 182 ms)."""
        wanted = sorted({i for i in ids if isinstance(i, str)})
        size = _PG_LINKED_CHUNK if self.dialect == "postgresql" else _LOOKUP_CHUNK // 2
        for chunk in _chunks(wanted, size):
            yield from self.iter_query(Query(linked_to=chunk, access=access))

    def count(self, q: Query) -> int:
        w = where_of(q, self._mark)
        return int(self._fetch(f"SELECT count(*) FROM objects o{w.sql()}", w.params)[0][0])

    def bounds(self, q: Query) -> tuple[int, int] | None:
        """First and last `date_added_us` among the matching rows (TAXII headers)."""
        w = where_of(q, self._mark)
        lo, hi = self._fetch(
            f"SELECT min(o.date_added_us), max(o.date_added_us) FROM objects o{w.sql()}",
            w.params)[0]
        return None if lo is None else (int(lo), int(hi))

    def search(
        self, value: str, limit: int = 50, access: Access | None = None
    ) -> list[StoredVersion]:
        """Indicators whose pattern mentions `value` however either writes it, and objects
        whose id or name is `value` (names case-insensitively).

        Case-insensitive on every database (SQLite's LIKE folds ASCII, PostgreSQL's does not:
        both sides are lower-cased), and through the other spellings of the value
        (`stix.values.spellings`: `Bücher.example` finds `xn--bcher-kva.example` and back,
        `2001:DB8::1` finds `2001:0db8:0000:…:0001`, `::ffff:192.0.2.1` finds `192.0.2.1`)."""
        def like(text: str) -> str:
            return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"

        forms = list(dict.fromkeys([value.lower(), *(f.lower() for f in spellings(value))]))
        w = Where(self._mark)
        w.add("o.is_latest")
        w.add("(o.id = ? OR lower(o.name) LIKE lower(?) ESCAPE '\\' OR (o.type = 'indicator' AND ("
              + " OR ".join(["lower(o.json) LIKE ? ESCAPE '\\'"] * len(forms)) + ")))",
              value, like(value), *(like(f) for f in forms))
        if access is not None:
            add_access(w, access)
        rows = self._fetch(f"SELECT {_ALL_COLUMNS} FROM objects o{w.sql()} "
                           f"ORDER BY o.seq DESC LIMIT {int(limit)}", w.params)
        return [_row(r) for r in rows]

    def stats(self) -> dict[str, Any]:
        c = objects.c
        with self.engine.connect() as conn:
            by_type = dict(
                conn.execute(
                    select(c.type, func.count()).where(c.is_latest).group_by(c.type)
                ).all()
            )
            by_tlp = {
                TLP(k).label: v
                for k, v in conn.execute(
                    select(c.tlp, func.count()).where(c.is_latest).group_by(c.tlp)
                ).all()
            }
            by_source = dict(
                conn.execute(
                    select(c.source, func.count()).where(c.is_latest).group_by(c.source)
                ).all()
            )
            versions = conn.execute(select(func.count()).select_from(objects)).scalar() or 0
            revoked = conn.execute(
                select(func.count()).where(c.is_latest, c.revoked)
            ).scalar() or 0
            text_bytes = conn.execute(select(func.sum(func.length(c.json)))).scalar() or 0
        return {
            "objects": sum(by_type.values()),
            "versions": int(versions),
            "revoked": int(revoked),
            "by_type": by_type,
            "by_tlp": by_tlp,
            "by_source": by_source,
            "json_bytes": int(text_bytes),
        }

    # ---- hot reads (TAXII pages) ----------------------------------------------------

    def read_page(self, q: Query) -> Page:
        """`query`, kept as the name TAXII's handlers use."""
        return self.query(q)

    def read_rows(self, q: Query) -> tuple[list[PageRow], bool]:
        """A page with only what a TAXII envelope or manifest needs.

        Six columns instead of fifteen halve SQLite's time for a 5,000-row page
        (16 ms against 34 ms measured), and plain tuples skip building a dataclass per
        row (~7 us each): together ~3x on the page that full-collection paging repeats.
        """
        rows, more = self._read(q, "o.seq, o.id, o.version_us, o.date_added_us, o.json, o.tlp")
        return [PageRow(*r) for r in rows], more

    @property
    def _mark(self) -> str:
        return "?" if self.dialect == "sqlite" else "%s"

    def _read(self, q: Query, columns: str) -> tuple[list[Any], bool]:
        w = where_of(q, self._mark)
        sql = f"SELECT {columns} FROM objects o{w.sql()} ORDER BY o.seq"
        if q.limit is not None:
            sql += f" LIMIT {int(q.limit) + 1}"
        rows = self._fetch(sql, w.params)
        more = q.limit is not None and len(rows) > q.limit
        return (rows[: q.limit] if more else rows), more

    def _fetch(self, sql: str, params: list[Any]) -> list[Any]:
        with self.engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql, tuple(params))
                return list(cur.fetchall())
            finally:
                cur.close()

    # ---- deleting (TAXII "Delete An Object") ----------------------------------------

    def delete_versions(self, seqs: Sequence[int]) -> int:
        """Remove stored versions by `seq`; the newest remaining version of each id
        becomes latest again. Returns how many versions were removed."""
        seqs = list(dict.fromkeys(int(s) for s in seqs))
        if not seqs:
            return 0
        c = objects.c
        removed = 0
        with self.transaction() as conn:
            ids: set[str] = set()
            for chunk in _chunks(seqs, _LOOKUP_CHUNK):
                ids.update(conn.execute(select(c.id).where(c.seq.in_(chunk))).scalars())
                conn.execute(delete(audience).where(audience.c.seq.in_(chunk)))
                removed += conn.execute(delete(objects).where(c.seq.in_(chunk))).rowcount
            for chunk in _chunks(sorted(ids), _LOOKUP_CHUNK):
                newest = (
                    select(c.id, func.max(c.version_us).label("v"))
                    .where(c.id.in_(chunk)).group_by(c.id).subquery()
                )
                keep = conn.execute(
                    select(c.seq).join(newest, and_(c.id == newest.c.id,
                                                    c.version_us == newest.c.v))
                ).scalars().all()
                conn.execute(update(objects).where(c.id.in_(chunk)).values(is_latest=False))
                if keep:
                    conn.execute(update(objects).where(c.seq.in_(keep)).values(is_latest=True))
        return removed

    # ---- tags and small state --------------------------------------------------------

    def tag(self, items: Iterable[tuple[str, str, str | None]]) -> None:
        """Attach (id, tag, detail) notes to objects; re-tagging replaces the detail.

        On the bare driver, as `put_prepared`: an import tags up to one row per indicator
        of a batch (SQLAlchemy's executemany: ~10 µs a row of CPU, more than the check)."""
        rows = [(i, t, d) for i, t, d in items]
        if not rows:
            return
        m = self._mark
        with self.transaction() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                # One upsert a row (SQLite >= 3.24 and PostgreSQL), not a DELETE and an INSERT.
                cur.executemany(f"INSERT INTO tags (id, tag, detail) VALUES ({m}, {m}, {m}) "
                                "ON CONFLICT (id, tag) DO UPDATE SET detail = excluded.detail",
                                rows)
            finally:
                cur.close()

    def tags_of(self, stix_id: str) -> dict[str, str | None]:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(select(tags.c.tag, tags.c.detail).where(tags.c.id == stix_id))
                .all()
            )

    def tagged(self, tag: str) -> list[tuple[str, str | None]]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(tags.c.id, tags.c.detail).where(tags.c.tag == tag))
                .all()
            )

    # Columns `rows_by_ids` may name (its SQL is built from them).
    _ROW_COLUMNS = frozenset({"seq", *INSERT_COLUMNS})

    def rows_by_ids(self, ids: list[str], columns: Sequence[str]) -> list[tuple[Any, ...]]:
        """`columns` of every stored version (any access) of `ids`, as plain tuples, on the
        bare driver with the ids as one parameter: the batch lookups of a federation pull
        (87 ms a page of 10,000 through an expanding SQLAlchemy IN, measured)."""
        if not set(columns) <= self._ROW_COLUMNS:
            raise ValueError(f"not a column of objects: {sorted(set(columns) - self._ROW_COLUMNS)}")
        if not ids:
            return []
        conn: Any = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                return [tuple(r) for r in select_by_ids(
                    cur, self.dialect == "postgresql", ", ".join(columns), ids)]
            finally:
                cur.close()
                conn.rollback()
        finally:
            conn.close()

    def newest_seq(self) -> int:
        """The sequence number of the newest stored version, 0 when there is none."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(objects.c.seq))).scalar() or 0)

    def delivered_after(self, seq: int, source: str) -> bool:
        """Does the store hold a version `source` delivered after `seq`? One indexed read
        (federation asks it before pushing: anything of this node's own that is new?)."""
        c = objects.c
        with self.engine.connect() as conn:
            return conn.execute(select(c.seq).where(c.seq > seq, c.source == source)
                                .limit(1)).first() is not None

    def seq_watch(self) -> SeqWatch:
        """A cheap repeated `newest_seq` for a loop that polls it (see `SeqWatch`)."""
        return SeqWatch(self)

    def kv_get(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar()

    def kv_set(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(delete(kv).where(kv.c.key == key))
            conn.execute(kv.insert().values(key=key, value=value))


class SeqWatch:
    """The store's newest seq, read on one driver connection the watcher keeps: 0.16 ms
    of CPU a poll against 0.75 ms through a pooled SQLAlchemy connection (measured at 10
    polls a second), which at 32 nodes was 0.25 of the machine's 2 cores."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Any = None
        # One driver connection, so one thread at a time: an asyncio loop polls it with
        # `to_thread`, and a poll cancelled at shutdown still runs while the loop's
        # `finally` closes the watch. Unguarded, SQLite's connection was closed under the
        # running query and the process died (SIGSEGV; tests/store/test_seq_watch.py).
        self._lock = threading.Lock()

    def newest(self) -> int:
        with self._lock:
            try:
                if self.conn is None:
                    self.conn = self.store.engine.raw_connection()
                cur = self.conn.cursor()
                try:
                    cur.execute("SELECT max(seq) FROM objects")
                    value = cur.fetchone()[0]
                finally:
                    cur.close()
                self.conn.rollback()  # end the read: a held snapshot would never see new rows
                return int(value or 0)
            except Exception:
                self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


class _WriteTxn:
    """A serialised write transaction (see the module docstring for why)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        self.store._local_lock.acquire()
        try:
            conn = self.store.write_engine.connect().execution_options(shieldwall_write=True)
            conn.begin()
            if self.store.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")
        except Exception:
            self.store._local_lock.release()
            raise
        self.conn = conn
        return conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.conn is not None
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()
            self.store._local_lock.release()


def _tune_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # No JIT: the store's reads are short indexed queries, and past 2M objects the
        # planner's cost of a link lookup (expression indexes, migration 0009) passes
        # jit_above_cost, so each one compiled for ~28 ms to run for ~1 ms (a case list of
        # 50 requests makes 13: 364 -> 31 ms a page at 20,000 cases). Set on the session,
        # and committed (a SET rolled back with its transaction is undone), so that a URL's
        # own `options` (a search_path) stay as they are.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET jit = off")
        dbapi_conn.commit()


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        # Checkpoint every 64 MB of WAL instead of every 4 MB: a bulk import otherwise
        # copies each batch into the database file (and fsyncs) right after committing
        # it, which measured more than the inserts themselves. Durability of committed
        # transactions is unchanged: they are in the WAL either way.
        cur.execute("PRAGMA wal_autocheckpoint=16384")
        cur.execute("PRAGMA journal_size_limit=67108864")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("shieldwall_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _replace(q: Query, **changes: Any) -> Query:
    from dataclasses import replace

    return replace(q, **changes)


__all__ = [
    "Access",
    "ObjectResult",
    "Page",
    "PageRow",
    "Provenance",
    "PutResult",
    "Query",
    "Store",
    "StoreError",
    "StoredVersion",
    "metadata",
]
