"""The write half of `Store.put_prepared`: one batch, one transaction, on the bare driver.

Why the bare DB-API cursor instead of SQLAlchemy here: an import spends most of its
write time per row, and SQLAlchemy's statement compilation (an expanding IN of 5,000
ids renders 5,000 bind names) and parameter processing cost more than SQLite's own
work. Every statement below is a fixed string; rows are plain tuples.

The steps, each set-based:

1. One query finds which ids of the batch the store already holds (SQLite: the ids
   travel as one JSON array read by `json_each`; PostgreSQL: one `= ANY(array)`),
   through the unique (id, version_us) index. In a bulk import of fresh objects it
   returns nothing and everything after it takes the fast path.
2. Same id and version already stored: identical canonical text is a duplicate, other
   text a conflict (the stored text is fetched only for those rows). A new version whose
   `created_by_ref` differs from its object's (as the first stored version, or the first
   in the batch, names it) is refused: STIX keeps the creator across versions, and only
   the creator makes them (whoever writes; TAXII and federation also check who delivers).
3. Latest-version bookkeeping in Python over the batch (a dict per id), then one
   UPDATE demotes the previous latest versions.
4. Rows go in with one executemany (SQLite) or one COPY (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from shieldwall.store.types import ObjectResult, Provenance, PutResult, audience_key, reject

if TYPE_CHECKING:
    from shieldwall.store.prepare import PreparedVersion

# Rows per IN (...) list; well under SQLite's 32,766 bound parameters.
CHUNK = 5_000

INSERT_COLUMNS = (
    "id", "type", "spec_version", "version_us", "date_added_us", "is_latest", "revoked", "tlp",
    "created_by_ref", "name", "source", "channel", "collection", "json", "status", "audience_key",
)

# Positions in a PreparedVersion (rows may arrive as plain tuples in its field order).
ID, VER, STAMP, TEXT, CREATOR, AUDIENCE, STATUS = 0, 1, 2, 3, 8, 10, 11

CONFLICT = "conflict: same id and version already stored with different content"
CREATOR_KEPT = "created_by_ref differs from the stored object's creator (a new version keeps it)"


def chunks(items: Sequence[Any], n: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def select_by_ids(cur: Any, pg: bool, columns: str, ids: list[str]) -> list[Any]:
    """`columns` (a fixed SQL list) of every stored version of `ids`, the ids travelling
    as one parameter (SQLite: a JSON array read by `json_each`; PostgreSQL: an array)."""
    if pg:
        cur.execute(f"SELECT {columns} FROM objects WHERE id = ANY(%s)", (ids,))
    else:
        cur.execute(f"SELECT {columns} FROM objects WHERE id IN "
                    "(SELECT value FROM json_each(?))", (orjson.dumps(ids).decode(),))
    return list(cur.fetchall())


class BatchWriter:
    """Writes one batch of prepared versions inside an open write transaction."""

    def __init__(self, cur: Any, dialect: str) -> None:
        self.cur = cur
        self.pg = dialect == "postgresql"
        self.mark = "%s" if self.pg else "?"

    # ---- lookups ------------------------------------------------------------------

    def held(self, ids: list[str]) -> tuple[
            dict[tuple[str, int], int], dict[str, tuple[int, int]], dict[str, str | None]]:
        """Stored (id, version) -> seq for `ids`, each id's latest (version, seq), and
        each id's creator (as its first stored version names it)."""
        existing: dict[tuple[str, int], int] = {}
        latest: dict[str, tuple[int, int]] = {}
        first: dict[str, tuple[int, str | None]] = {}
        for seq, oid, ver, is_latest, creator in select_by_ids(
                self.cur, self.pg, "seq, id, version_us, is_latest, created_by_ref", ids):
            existing[(oid, ver)] = seq
            if is_latest:
                latest[oid] = (ver, seq)
            if oid not in first or seq < first[oid][0]:
                first[oid] = (seq, creator)
        return existing, latest, {oid: creator for oid, (_, creator) in first.items()}

    def texts(self, seqs: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for part in chunks(seqs):
            self.cur.execute(f"SELECT seq, json FROM objects WHERE seq IN "
                             f"({','.join([self.mark] * len(part))})", tuple(part))
            out.update(self.cur.fetchall())
        return out

    def last_added(self) -> int:
        self.cur.execute("SELECT max(date_added_us) FROM objects")
        row = self.cur.fetchone()
        return int(row[0] or 0)

    # ---- writes -------------------------------------------------------------------

    def demote(self, seqs: list[int]) -> None:
        false = "false" if self.pg else "0"
        for part in chunks(seqs):
            self.cur.execute(f"UPDATE objects SET is_latest = {false} WHERE seq IN "
                             f"({','.join([self.mark] * len(part))})", tuple(part))

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        cols = ", ".join(INSERT_COLUMNS)
        if self.pg:
            with self.cur.copy(f"COPY objects ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.cur.executemany(
                f"INSERT INTO objects ({cols}) VALUES ({', '.join(['?'] * len(INSERT_COLUMNS))})",
                rows)

    def seqs_by_added(self, first: int, n: int) -> dict[int, int]:
        m = self.mark
        self.cur.execute(f"SELECT date_added_us, seq FROM objects "
                         f"WHERE date_added_us >= {m} AND date_added_us < {m}", (first, first + n))
        return dict(self.cur.fetchall())

    def insert_audience(self, rows: list[tuple[int, str]]) -> None:
        m = self.mark
        self.cur.executemany(f"INSERT INTO audience (seq, name) VALUES ({m}, {m})", rows)

    def insert_audience_sets(self, rows: list[tuple[str, str]]) -> None:
        m = self.mark
        self.cur.executemany(f"INSERT INTO audience_sets (name, audience_key) VALUES ({m}, {m}) "
                             "ON CONFLICT DO NOTHING", rows)


def write_batch(
    w: BatchWriter,
    prepared: list[PreparedVersion],
    prov: Provenance,
    result: PutResult,
    details: bool,
    now: int,
) -> None:
    """Steps 1-4 of the module docstring for one batch; fills `result`."""
    # Rows are read by position (see PreparedVersion): plain tuples cross processes cheaper.
    ids = list(dict.fromkeys([p[ID] for p in prepared]))
    existing, latest, creators = w.held(ids)

    if not existing and len(ids) == len(prepared):
        # Fast path, the bulk-import case: every id is new and appears once in the batch.
        fresh = prepared
        becomes_latest = None
    else:
        stored_text = w.texts([existing[k] for k in
                               {(p[ID], p[VER]) for p in prepared} if k in existing])
        by_key: dict[tuple[str, int], PreparedVersion] = {}
        for p in prepared:
            key = (p[ID], p[VER])
            if key in existing:
                text = stored_text[existing[key]]
            elif key in by_key:
                text = by_key[key][TEXT]
            elif creators.setdefault(p[ID], p[CREATOR]) != p[CREATOR]:
                reject(result, p[ID], p[STAMP], CREATOR_KEPT, details)
                continue
            else:
                by_key[key] = p
                continue
            if text == p[TEXT]:
                result.duplicates += 1
                if details:
                    result.details.append(ObjectResult(p[ID], p[STAMP], "duplicate"))
            else:
                reject(result, p[ID], p[STAMP], CONFLICT, details)
        if not by_key:
            return
        fresh = list(by_key.values())
        newest: dict[str, int] = {}
        for oid, ver in by_key:
            if ver > newest.get(oid, -1):
                newest[oid] = ver
        becomes_latest = set()
        demote: list[int] = []
        for oid, ver in newest.items():
            cur = latest.get(oid)
            if cur is None or ver > cur[0]:
                becomes_latest.add((oid, ver))
                if cur is not None:
                    demote.append(cur[1])
        if demote:
            w.demote(demote)

    base = max(now, w.last_added() + 1)
    src, chan, coll = prov.source, prov.channel, prov.collection
    # Rows with a status carry their audience's key (types.audience_key), its names in
    # audience_sets: case statistics test a reader against keys, not rows' audiences.
    keys: dict[tuple[str, ...], str | None] = {}
    for p in fresh:
        if p[STATUS] is not None and p[AUDIENCE] not in keys:
            keys[p[AUDIENCE]] = audience_key(p[AUDIENCE])
    rows: list[tuple[Any, ...]] = []
    audience_rows: list[tuple[int, tuple[str, ...]]] = []
    if becomes_latest is None:
        rows = [(p[0], p[4], p[5], p[1], base + i, True, p[6], p[7], p[8], p[9],
                 src, chan, coll, p[3], p[STATUS],
                 None if p[STATUS] is None else keys[p[AUDIENCE]])
                for i, p in enumerate(fresh)]
        result.new += len(rows)
        if details:
            result.details.extend(ObjectResult(p[ID], p[STAMP], "new") for p in fresh)
        audience_rows = [(i, p[AUDIENCE]) for i, p in enumerate(fresh) if p[AUDIENCE]]
    else:
        for i, p in enumerate(fresh):
            is_latest = (p[ID], p[VER]) in becomes_latest
            rows.append((p[0], p[4], p[5], p[1], base + i, is_latest, p[6], p[7], p[8], p[9],
                         src, chan, coll, p[3], p[STATUS],
                         None if p[STATUS] is None else keys[p[AUDIENCE]]))
            if p[AUDIENCE]:
                audience_rows.append((i, p[AUDIENCE]))
            if not is_latest:  # older than the stored latest or another in this batch
                result.history += 1
                outcome = "history"
            elif p[ID] in latest:
                result.new_versions += 1
                outcome = "new_version"
            else:
                result.new += 1
                outcome = "new"
            if details:
                result.details.append(ObjectResult(p[ID], p[STAMP], outcome))  # type: ignore[arg-type]
    w.insert(rows)
    sets = sorted({(n, k) for names, k in keys.items() if k is not None for n in names})
    if sets:
        w.insert_audience_sets(sets)
    if audience_rows:
        seq_of = w.seqs_by_added(base, len(rows))
        w.insert_audience([(seq_of[base + i], n) for i, names in audience_rows for n in names])
