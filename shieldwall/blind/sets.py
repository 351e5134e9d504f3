"""Blind sets: what an owner publishes so allies can match indicators they never learn.

For each protected indicator's value (in its canonical form, `stix.values`, as the matcher
compares it) the set holds `F_k(kind || value)` truncated to 128 bits, where `F_k` is the
owner's RFC 9497 OPRF (`keys.oprf`), grouped by the indicator's STIX path, each beside an
opaque random handle. The key never leaves the owner's node: an ally learns an output only
by asking the owner to evaluate a value it blinded (`blind.resolve`), one value at a time,
counted and limited (`blind.evaluate`).

A set is a STIX object of our own type, `x-shieldwall-blind-set`, declared by an
extension-definition (new-sdo) of the owner's, federated like any object at the level the
owner chose (one that allies may hold). Metadata: algorithm, key epoch, canonicalisation
version, the owner's public key (so an ally verifies each evaluation's DLEQ proof against
the key the set names, and an owner cannot fingerprint allies with a key each). Large sets
are split into parts of `PART_SIZE` values, each one object under the 16 MB object limit.

Entries are stored packed: per path, the concatenated outputs (16 bytes each, sorted, so
the order says nothing) and the concatenated handles (8 bytes each), base64. A handle maps
back to its indicator only in the owner's `blind_handles` table.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, insert

from shieldwall.blind.tables import blind_handles
from shieldwall.errors import ShieldwallError
from shieldwall.keys.oprf import ALGORITHM, OprfKey
from shieldwall.stix import values as canon
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, now_us
from shieldwall.store import Provenance, Query, Store

BLIND_SET_TYPE = "x-shieldwall-blind-set"
CANONICALISATION = "shieldwall-values-1"  # stix/values.py as of this version
OUTPUT_BYTES = 16
HANDLE_BYTES = 8
PART_SIZE = 100_000
# Below this many values one process evaluates; above, a pool (the library holds the GIL).
POOL_THRESHOLD = 20_000
_CHUNK = 10_000


class BlindSetError(ShieldwallError):
    """A blind set cannot be published or read; the message says why."""


def oprf_input(path: str, value: str) -> bytes:
    """What is evaluated for a canonical `value` of `path`: its kind, a newline, the value.
    The kind (`stix.values.kind_of`; hashes by algorithm) keeps an address and a name of
    the same spelling apart, and lets every column the matcher reads for a path agree."""
    return f"{input_kind(path)}\n{value}".encode()


def input_kind(path: str) -> str:
    kind = canon.kind_of(path)
    if kind == canon.HASH:
        return "hash:" + path.rpartition(".")[2].strip("'").upper()
    return kind or path


def protected_values(indicator: dict[str, Any]) -> list[tuple[str, str]] | str:
    """(path, canonical value) pairs a blind set can hold for `indicator`, or why none.

    Only equality can be matched blind: a pattern that is one observation of `=` / `IN`
    comparisons joined by OR. Anything else (LIKE, MATCHES, a CIDR, several observations)
    would need the owner to say more than whether a value is in the set."""
    from shieldwall.detect.exact import triggers

    pattern = indicator.get("pattern")
    if indicator.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
        return "not a STIX pattern"
    try:
        trig = triggers(pattern)
    except ValueError as exc:
        return f"pattern not usable: {str(exc)[:100]}"
    if trig.multi or not trig.direct or any(a.op not in ("=", "IN") for a in trig.atoms):
        return "only = and IN comparisons joined by OR can be matched blind"
    return [(a.path, v) for a in trig.atoms for v in a.values]


# ---- evaluation (owner) -----------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(seed: bytes, epoch: int) -> None:
    _WORKER["ev"] = OprfKey(epoch, seed).evaluator()


def _evaluate_chunk(inputs: list[bytes]) -> list[bytes]:
    ev = _WORKER["ev"]
    return [bytes(ev.evaluate_known_input(x))[:OUTPUT_BYTES] for x in inputs]


def evaluate_all(key: OprfKey, inputs: list[bytes], workers: int | None = None) -> list[bytes]:
    """F_k of every input, truncated: ~66 us each in one process, so a million use a pool
    (one process per core; the library holds the GIL)."""
    if len(inputs) < POOL_THRESHOLD:
        _init_worker(key.seed, key.epoch)
        try:
            return _evaluate_chunk(inputs)
        finally:
            _WORKER.clear()
    chunks = [inputs[i:i + _CHUNK] for i in range(0, len(inputs), _CHUNK)]
    n = workers or max(1, os.cpu_count() or 1)
    with ProcessPoolExecutor(n, initializer=_init_worker,
                             initargs=(key.seed, key.epoch)) as pool:
        return [o for part in pool.map(_evaluate_chunk, chunks) for o in part]


# ---- the STIX objects ----------------------------------------------------------------------


def extension_definition(owner: str, created: str) -> dict[str, Any]:
    """The owner's extension-definition declaring the set type (one per owner: each is
    its creator's to version)."""
    identity = member_identity_id(owner)
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": deterministic_id("extension-definition", f"{BLIND_SET_TYPE}|{owner}"),
        "created_by_ref": identity,
        "created": created,
        "modified": created,
        "name": "Shieldwall blind set",
        "description": "Values of indicators the owner does not share, as 128-bit outputs "
                       "of the owner's RFC 9497 OPRF; an ally matches its telemetry by "
                       "asking the owner to evaluate values it blinded (docs/blind.md).",
        "schema": "https://shieldwall.example/schemas/x-shieldwall-blind-set.json",
        "version": "1.0",
        "extension_types": ["new-sdo"],
    }


def set_id(owner: str, epoch: int, part: int) -> str:
    return deterministic_id(BLIND_SET_TYPE, f"{owner}|{epoch}|{part}")


@dataclass
class Entry:
    path: str
    value: str
    indicator_id: str


@dataclass
class Published:
    objects: list[dict[str, Any]]
    handles: list[tuple[str, str, int, str, str]]  # blind_handles rows, in column order
    values: int
    skipped: dict[str, str] = field(default_factory=dict)  # indicator id -> why


def build(owner: str, key: OprfKey, entries: list[Entry], *, tlp: TLP = TLP.AMBER,
          workers: int | None = None) -> Published:
    """The set objects (and the owner's private handle rows) for `entries`."""
    created = format_ts(now_us())
    uniq: dict[tuple[str, str], Entry] = {}
    for e in entries:
        uniq.setdefault((e.path, e.value), e)
    todo = list(uniq.values())
    outputs = evaluate_all(key, [oprf_input(e.path, e.value) for e in todo], workers)
    # Packed as arrays: outputs (n, 16) and handles (n, 8) bytes, one random draw for all.
    outs = np.frombuffer(b"".join(outputs), np.uint8).reshape(-1, OUTPUT_BYTES)
    handles = np.frombuffer(secrets.token_bytes(HANDLE_BYTES * len(todo)),
                            np.uint8).reshape(-1, HANDLE_BYTES)
    handle_hex = handles.tobytes().hex()
    ext = extension_definition(owner, created)
    parts = max(1, -(-len(todo) // PART_SIZE))
    objects: list[dict[str, Any]] = [ext]
    rows: list[tuple[str, str, int, str, str]] = []
    public = key.public_key.hex()
    paths = np.array([e.path for e in todo], dtype=object)
    for p in range(parts):
        sid = set_id(owner, key.epoch, p + 1)
        lo, hi = p * PART_SIZE, min(len(todo), (p + 1) * PART_SIZE)
        w = 2 * HANDLE_BYTES
        rows += [(handle_hex[i * w:(i + 1) * w], sid, key.epoch, todo[i].indicator_id,
                  todo[i].path) for i in range(lo, hi)]
        packed = {}
        for path in sorted(set(paths[lo:hi].tolist())):
            idx = lo + np.flatnonzero(paths[lo:hi] == path)
            # sorted by output (as bytes: the first 8 then the last 8, big-endian)
            halves = outs[idx].view(">u8")
            idx = idx[np.lexsort((halves[:, 1], halves[:, 0]))]
            packed[path] = {
                "outputs": base64.b64encode(outs[idx].tobytes()).decode(),
                "handles": base64.b64encode(handles[idx].tobytes()).decode(),
            }
        count = hi - lo
        objects.append({
            "type": BLIND_SET_TYPE,
            "spec_version": "2.1",
            "id": sid,
            "created_by_ref": member_identity_id(owner),
            "created": created,
            "modified": created,
            "name": f"Blind set of {owner}, key epoch {key.epoch}"
                    + (f", part {p + 1} of {parts}" if parts > 1 else ""),
            "owner": owner,
            "algorithm": ALGORITHM,
            "output_bits": OUTPUT_BYTES * 8,
            "key_epoch": key.epoch,
            "key_id": key.key_id,
            "public_key": public,
            "canonicalisation": CANONICALISATION,
            "part": p + 1,
            "parts": parts,
            "count": count,
            "entries": packed,
            "extensions": {ext["id"]: {"extension_type": "new-sdo"}},
            "object_marking_refs": [tlp_marking_ref(tlp)],
        })
    return Published(objects, rows, len(todo))


def own_sets(store: Store, owner: str) -> list[dict[str, Any]]:
    """The owner's latest, unrevoked blind sets as stored."""
    me = member_identity_id(owner)
    out = []
    for row in store.iter_query(Query(types=[BLIND_SET_TYPE], include_revoked=False)):
        if row.created_by_ref == me and row.is_latest:
            out.append(row.obj())
    return [o for o in out if not o.get("revoked")]


def publish(store: Store, owner: str, key: OprfKey, entries: list[Entry], *,
            tlp: TLP = TLP.AMBER, workers: int | None = None) -> Published:
    """Build, store (revoking the owner's earlier sets this one replaces) and record handles.
    The sets reach allies by federation, like any object."""
    if tlp > TLP.AMBER:
        raise BlindSetError(f"a blind set marked {tlp.label} would reach no ally; use "
                            "amber or wider (the set hides the values, not the level)")
    pub = build(owner, key, entries, tlp=tlp, workers=workers)
    new_ids = {o["id"] for o in pub.objects}
    stamp = format_ts(now_us())
    revoked = [o | {"revoked": True, "modified": max(stamp, o["modified"])}
               for o in own_sets(store, owner) if o["id"] not in new_ids]
    store.put_many([*pub.objects, *revoked], Provenance(owner, "blind"))
    with store.engine.begin() as conn:
        for o in pub.objects:
            if o["type"] == BLIND_SET_TYPE:
                conn.execute(delete(blind_handles).where(blind_handles.c.set_id == o["id"]))
        _insert_rows(conn, blind_handles, pub.handles)
    return pub


def _insert_rows(conn: Any, table: Any, rows: list[tuple[Any, ...]]) -> None:
    """Rows (tuples in the table's column order) by the driver's own `executemany`: a
    million handle rows without a parameter dict built per row (SQLAlchemy's `insert`
    spent ~25 us a row doing that)."""
    marks = {"qmark": "?", "numeric": ":1", "named": ":p", "format": "%s",
             "pyformat": "%s"}[conn.dialect.paramstyle]
    if conn.dialect.paramstyle in ("numeric", "named"):  # not the drivers used here
        conn.execute(insert(table), [dict(zip(table.c.keys(), r, strict=True)) for r in rows])
        return
    sql = (f"INSERT INTO {table.name} ({', '.join(table.c.keys())}) VALUES "
           f"({', '.join([marks] * len(table.c))})")
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for i in range(0, len(rows), 50_000):
            cursor.executemany(sql, rows[i:i + 50_000])
    finally:
        cursor.close()


def select_entries(store: Store, owner: str, min_tlp: TLP,
                   ids: Iterable[str] | None = None) -> tuple[list[Entry], dict[str, str]]:
    """The owner's own active indicators at `min_tlp` or narrower (or exactly `ids`), as
    entries; with the reason each one left out could not be."""
    me = member_identity_id(owner)
    wanted = set(ids) if ids else None
    entries: list[Entry] = []
    skipped: dict[str, str] = {}
    q = Query(types=["indicator"], ids=sorted(wanted) if wanted else None,
              include_revoked=False)
    for row in store.iter_query(q):
        if row.created_by_ref != me or row.revoked:
            continue
        if wanted is None and row.tlp < min_tlp:
            continue
        found = protected_values(row.obj())
        if isinstance(found, str):
            skipped[row.id] = found
            continue
        entries.extend(Entry(p, v, row.id) for p, v in found)
    return entries, skipped


# ---- reading sets (ally) ------------------------------------------------------------------


@dataclass
class BlindSet:
    """A set as an ally uses it: outputs per path, and the handle of each output."""

    id: str
    owner: str
    epoch: int
    key_id: str
    public_key: bytes
    outputs: dict[str, dict[bytes, str]]  # path -> output -> handle (hex)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.outputs.values())


def parse(obj: dict[str, Any]) -> BlindSet:
    """A stored set object, checked: a set naming an owner whose identity did not create it
    is refused (anyone could otherwise claim to protect values in another's name)."""
    owner = obj.get("owner")
    if not isinstance(owner, str) or obj.get("created_by_ref") != member_identity_id(owner):
        raise BlindSetError(f"{obj.get('id')}: its owner did not create it")
    if obj.get("algorithm") != ALGORITHM or obj.get("canonicalisation") != CANONICALISATION:
        raise BlindSetError(f"{obj.get('id')}: algorithm or canonicalisation this node does "
                            "not know")
    try:
        public = bytes.fromhex(str(obj["public_key"]))
        epoch = int(obj["key_epoch"])
        outputs: dict[str, dict[bytes, str]] = {}
        for path, packed in dict(obj.get("entries") or {}).items():
            outs = base64.b64decode(packed["outputs"], validate=True)
            hs = base64.b64decode(packed["handles"], validate=True)
            n = len(outs) // OUTPUT_BYTES
            if len(outs) != n * OUTPUT_BYTES or len(hs) != n * HANDLE_BYTES:
                raise ValueError("entries of the wrong length")
            outputs[str(path)] = {
                outs[i * OUTPUT_BYTES:(i + 1) * OUTPUT_BYTES]:
                    hs[i * HANDLE_BYTES:(i + 1) * HANDLE_BYTES].hex() for i in range(n)}
    except (KeyError, ValueError, TypeError) as exc:
        raise BlindSetError(f"{obj.get('id')}: not a readable blind set ({exc})") from None
    if len(public) != 32:
        raise BlindSetError(f"{obj.get('id')}: public key of the wrong length")
    return BlindSet(str(obj["id"]), owner, epoch, str(obj.get("key_id", "")), public, outputs)


def held_sets(store: Store, *, exclude_owner: str | None = None) -> Iterator[BlindSet]:
    """Every readable, unrevoked set the node holds, newest epoch of each owner only."""
    sets: list[BlindSet] = []
    for row in store.iter_query(Query(types=[BLIND_SET_TYPE], include_revoked=False)):
        obj = row.obj()
        if obj.get("revoked"):
            continue
        try:
            s = parse(obj)
        except BlindSetError:
            continue
        if s.owner != exclude_owner:
            sets.append(s)
    newest: dict[str, int] = {}
    for s in sets:
        newest[s.owner] = max(newest.get(s.owner, 0), s.epoch)
    yield from (s for s in sets if s.epoch == newest[s.owner])


def indicator_of_handle(store: Store, handle: str) -> str | None:
    """The indicator a handle of this node's sets stands for (owner only), or None."""
    from sqlalchemy import select

    with store.engine.connect() as conn:
        row = conn.execute(select(blind_handles.c.indicator_id).where(
            blind_handles.c.handle == handle)).first()
    return str(row[0]) if row else None
