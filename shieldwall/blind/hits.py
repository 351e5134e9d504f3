"""Blind hits: matching telemetry against blind sets, and the sightings a hit becomes.

`BlindMatcher.feed(obs)` takes a batch of telemetry as the hunt reads it (it is a `Hunter`
sink). For each path a held set protects, the columns the matcher reads for that path
(`detect.index.columns_for`) give their distinct values; values not seen before in this hunt
are put in canonical form, resolved (cache, else one batched round trip to the owner) and
looked up in the set's outputs. Values seen before cost a set lookup, and the rows of a
batch that hit are found with one `is_in` over the (few) values that hit: the event path is
a lookup, as for the plain matcher.

A hit becomes a sighting of the blind set, written by this node for its member, marked
TLP:AMBER+STRICT with the audience {owner, this member}: it reaches the owner and nobody
else. It carries the entry's opaque handle (which only the owner maps to an indicator) and
where the line is (file, line, field, time), never the value: the ally's analyst reads
"a protected indicator of cert-X matched this line" and the line itself is theirs.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.blind.resolve import ResolveError, Resolver, output_bytes
from shieldwall.blind.sets import BlindSet, input_kind, oprf_input
from shieldwall.detect.index import columns_for
from shieldwall.detect.readers import LINE, TS, Observations
from shieldwall.detect.readers.base import canonical_column
from shieldwall.stix import values as canon
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, now_us

HOUR_US = 3_600 * 1_000_000
HANDLE_PROPERTY = "x_shieldwall_blind_handle"
OWNER_PROPERTY = "x_shieldwall_blind_owner"
EXPLANATION = "x_shieldwall_explanation"
MAX_EXPLANATIONS = 5
COMPACT_AT = 1 << 20  # pending values of a path before its batches' values are folded
# Bytes of the learnt batches' protected columns (with their times and lines) kept for
# `match_kept`, past which the files are read again on a hit: ~55 bytes a line of a conn
# log's two addresses, so ~4.5 million lines.
KEEP_BYTES = 256 << 20


@dataclass(frozen=True)
class BlindHit:
    set_id: str
    owner: str
    handle: str
    path: str
    field: str
    file: str
    line: int
    ts_us: int

    def say(self) -> str:
        """What the ally's analyst reads: enough to act, nothing about the set."""
        return (f"a protected indicator of {self.owner} matched {self.file} line {self.line} "
                f"({self.field})")


class BlindMatcher:
    """Matches batches against `sets`; `resolvers` by the set's public key (hex).

    Two ways to use it. In one pass (`feed` with `learn=True`, as `watch` would): each
    batch's new values are resolved before its rows are matched. In two (`hunt`): `learn`
    over the telemetry collects every distinct value, `flush` resolves them all in large
    pipelined batches, then, only when a value hits, the event path: `match_kept` over the
    protected columns `learn` kept of each batch (up to `keep` bytes), else `feed` with
    `learn=False` as the files are read again; one `is_in` per column over the values known
    to hit, as cheap as the plain matcher's lookup."""

    def __init__(self, sets: list[BlindSet], resolvers: dict[str, Resolver],
                 on_hit: Callable[[BlindHit], None], *, learn: bool = True,
                 keep: int = KEEP_BYTES) -> None:
        self.sets = sets
        self.resolvers = resolvers
        self.on_hit = on_hit
        self.learning = learn
        self.paths = sorted({p for s in sets for p in s.outputs})
        self.hits = 0
        # path -> Arrow arrays of the raw values resolved (`flush`), and the Python set of
        # them, built only when values are collected after a flush (`watch`): a hunt's one
        # flush never builds it.
        self._done: dict[str, list[pa.Array]] = defaultdict(list)
        self._seen: dict[str, set[Any]] = defaultdict(set)
        self._folded: dict[str, int] = defaultdict(int)  # arrays of `_done` in `_seen`
        # path -> type -> the distinct values of each batch collected, not yet resolved
        self._pending: dict[str, dict[pa.DataType, list[pa.Array]]] = defaultdict(dict)
        self._pending_n: dict[str, int] = defaultdict(int)
        # path -> raw value -> [(set, handle)]: only values that hit (a handful)
        self._hit: dict[str, dict[Any, list[tuple[BlindSet, str]]]] = defaultdict(dict)
        self._hit_arrays: dict[str, pa.Array] = {}
        self.failed: dict[str, str] = {}  # set id -> why it could not be resolved
        self._set_firsts: dict[tuple[str, str], tuple[np.ndarray, np.uint64, np.ndarray]] = {}
        # What `learn` read of each batch (the protected columns, times, lines), for
        # `match_kept`; None once more than `keep` bytes would be kept.
        self._kept: list[Observations] | None = []
        self._kept_bytes = 0
        self._keep = keep

    def _columns(self, obs: Observations) -> Iterator[tuple[str, str, pa.Array, Any]]:
        names = obs.table.column_names
        for path in self.paths:
            for name in columns_for(path, names):
                flat, parents = _flat(obs.table.column(name))
                if len(flat):
                    yield path, name, flat, parents

    @property
    def hitting(self) -> int:
        """Distinct values resolved so far that hit a set: when none, a two-pass hunt skips
        its event pass (`feed`), since no row can hit."""
        return sum(len(v) for v in self._hit.values())

    def learn(self, obs: Observations) -> None:
        """Collect the values of `obs` this matcher has not seen (resolved by `flush`), and
        keep the batch's protected columns for `match_kept`."""
        read, flats = [], defaultdict(list)
        for path, name, flat, _ in self._columns(obs):
            flats[(path, flat.type)].append(flat)
            read.append(name)
        for (path, _), arrays in flats.items():  # a path's columns in one `unique`
            self._collect(path, arrays[0] if len(arrays) == 1 else pa.chunked_array(arrays))
        if self._kept is not None and read:
            names = obs.table.column_names
            slim = obs.table.select([*dict.fromkeys(read), *(c for c in (TS, LINE)
                                                             if c in names)])
            self._kept_bytes += slim.nbytes
            if self._kept_bytes > self._keep:
                self._kept = None  # too much to keep: the files are read again on a hit
            else:
                self._kept.append(Observations(slim, obs.source, obs.kind, event=obs.event))

    def match_kept(self) -> bool:
        """The event path over the batches `learn` kept (after `flush`): True when done,
        False when they were too many to keep, and the telemetry must be read again
        (`feed` with `learn=False`)."""
        if self._kept is None:
            return False
        kept, self._kept = self._kept, []
        self._kept_bytes = 0
        learning, self.learning = self.learning, False
        try:
            for obs in kept:
                self.feed(obs)
        finally:
            self.learning = learning
        return True

    def reads(self, column: str) -> list[str]:
        """The protected paths whose values the column `column` holds (none: not read)."""
        return [p for p in self.paths if columns_for(p, (column,))]

    def learn_column(self, column: str, values: pa.Array) -> None:
        """Collect distinct values of the column `column` given without their events (a
        retro-hunt's per-day summaries, `blind.retro`)."""
        for path in self.reads(column):
            self._collect(path, values)

    def hit_values(self, column: str) -> list[Any]:
        """The values of `column` resolved so far that hit a set (raw, as the column holds
        them)."""
        return list(dict.fromkeys(v for p in self.reads(column) for v in self._hit.get(p, ())))

    def feed(self, obs: Observations) -> int:
        found = 0
        for path, name, flat, parents in self._columns(obs):
            if self.learning:
                self._collect(path, flat)
                self.flush()
            found += self._rows(path, name, flat, parents, obs)
        self.hits += found
        return found

    def _collect(self, path: str, flat: pa.Array | pa.ChunkedArray) -> None:
        """Keep the batch's distinct values (Arrow `unique`, no Python per row). Values
        resolved by an earlier flush are left out here; repeats among the pending batches
        are folded by `flush` (and here, when many batches pile up)."""
        new = pc.unique(flat)
        if new.null_count:
            new = new.drop_null()
        if not len(new):
            return
        if self._done[path]:
            seen = self._seen_set(path)
            keep = [v not in seen for v in new.to_pylist()]
            if not any(keep):
                return
            new = new.filter(pa.array(keep, pa.bool_()))
        chunks = self._pending[path].setdefault(new.type, [])
        chunks.append(new)
        self._pending_n[path] += len(new)
        if self._pending_n[path] > COMPACT_AT and len(chunks) > 1:
            chunks[:] = [_distinct(chunks)]
            self._pending_n[path] = sum(len(c) for by in self._pending[path].values()
                                        for c in by)

    def _seen_set(self, path: str) -> set[Any]:
        seen, done = self._seen[path], self._done[path]
        for arr in done[self._folded[path]:]:
            seen.update(arr.to_pylist())
        self._folded[path] = len(done)
        return seen

    def flush(self) -> int:
        """Resolve every collected value (cache, else the owners) and note those that hit;
        the number of values resolved."""
        n = 0
        for path, by_type in self._pending.items():
            for chunks in by_type.values():
                raw = _distinct(chunks)
                if len(raw):
                    self._resolve(path, raw)
                    self._done[path].append(raw)
                    n += len(raw)
            by_type.clear()
            self._pending_n[path] = 0
        return n

    def _resolve(self, path: str, raw: pa.Array) -> None:
        """Resolve the distinct raw values `raw` of `path` against every set protecting it."""
        values, index = _canonical_values(path, raw)
        kind = input_kind(path)

        def inputs(todo: np.ndarray) -> list[bytes]:
            return [oprf_input(path, v) for v in values.take(pa.array(todo)).to_pylist()]

        keys: dict[int, np.ndarray] = {}  # by the resolver's keys (one per store)
        for s in self.sets:
            outs = s.outputs.get(path)
            resolver = self.resolvers.get(s.public_key.hex())
            if not outs or resolver is None or s.id in self.failed:
                continue
            try:
                at = keys.get(id(resolver.keys))
                if at is None:
                    at = keys[id(resolver.keys)] = resolver.keys.of_values(kind, values)
                resolved = resolver.outputs_of(at, inputs)
            except ResolveError as exc:  # one owner unreachable or refusing: the others
                self.failed[s.id] = f"{s.owner}: {exc}"  # still protect this hunt
                continue
            # The outputs' top bits against a bitmap of the set's (one gather), those
            # that pass against the set's sorted first halves (one searchsorted), and the
            # few that agree compared whole.
            firsts, shift, bitmap = self._firsts(s, path)
            maybe = np.flatnonzero(bitmap[resolved[:, 0] >> shift])
            at = np.minimum(np.searchsorted(firsts, resolved[maybe, 0]), len(firsts) - 1)
            hit = [i for i in maybe[firsts[at] == resolved[maybe, 0]].tolist()
                   if output_bytes(resolved[i]) in outs]
            if not hit:
                continue
            for pos in (np.flatnonzero(np.isin(index, hit)) if index is not None else hit):
                v = raw[int(pos)].as_py()
                handle = outs[output_bytes(resolved[index[pos] if index is not None else pos])]
                self._hit[path].setdefault(v, []).append((s, handle))
            self._hit_arrays.pop(path, None)

    def _firsts(self, s: BlindSet, path: str) -> tuple[np.ndarray, np.uint64, np.ndarray]:
        """The sorted first 64-bit halves of the outputs `s` holds for `path`, and a bitmap
        of their top bits (~1/16 of its bits set; 256 KB for 10,000 outputs) with the shift
        that gives them: an output whose bit is clear is not in the set."""
        got = self._set_firsts.get((s.id, path))
        if got is None:
            outs = s.outputs[path]
            firsts = np.sort(  # outputs are 16 bytes each
                np.frombuffer(b"".join(outs), ">u8")[::2].astype(np.uint64))
            bits = min(28, max(10, (len(firsts) * 16).bit_length()))
            shift = np.uint64(64 - bits)
            bitmap = np.zeros(1 << bits, bool)
            bitmap[firsts >> shift] = True
            got = self._set_firsts[(s.id, path)] = (firsts, shift, bitmap)
        return got

    def _rows(self, path: str, name: str, flat: pa.Array, parents: Any,
              obs: Observations) -> int:
        hits = self._hit.get(path)
        if not hits:
            return 0
        arr = self._hit_arrays.get(path)
        if arr is None:
            arr = self._hit_arrays[path] = pa.array(list(hits), flat.type)
        pos = np.flatnonzero(pc.fill_null(pc.is_in(flat, value_set=arr), False)
                             .to_numpy(zero_copy_only=False))
        if not len(pos):
            return 0
        values = flat.take(pa.array(pos)).to_pylist()
        rows = parents[pos] if parents is not None else pos
        ts = obs.table.column(TS)
        lines = obs.table.column(LINE)
        n = 0
        for row, v in zip(rows.tolist(), values, strict=True):
            row = obs.event_of(row)
            for s, handle in hits.get(v, ()):
                self.on_hit(BlindHit(s.id, s.owner, handle, path, name, obs.source,
                                     int(lines[row].as_py() or 0), int(ts[row].as_py() or 0)))
                n += 1
        return n


def _flat(col: pa.ChunkedArray) -> tuple[pa.Array, Any]:
    """A column's values as one array, with the row of each for list columns."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        return pc.list_flatten(arr), pc.list_parent_indices(arr).to_numpy()
    return arr, None


def _distinct(chunks: list[pa.Array]) -> pa.Array:
    """The distinct values of same-typed arrays."""
    return chunks[0] if len(chunks) == 1 else pc.unique(pa.chunked_array(chunks))


def _canonical_values(path: str, raw: pa.Array) -> tuple[pa.Array, Any]:
    """The distinct canonical values (a string array) of the distinct raw values `raw` of
    `path`, and for each raw value the position of its canonical value (None when they are
    one to one, as when the values are already canonical).

    Strings are put in canonical form by the readers' column function (`readers.base.
    canonical_column`: a column already canonical, such as a Zeek log's, is recognised from
    its bytes and kept; only the rows that need it are rewritten, by `stix.values`). Other
    types take the per-value path, as `oprf_input(path, str(value))`."""
    if pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type):
        text = raw.cast(pa.string()) if pa.types.is_large_string(raw.type) else raw
        canonical = canonical_column(path, text)
        if canonical is text:  # distinct values, none rewritten
            return text, None
    else:
        form = canon.canonicalizer(path)
        canonical = pa.array([form(v) if form and isinstance(v, str) else str(v)
                              for v in raw.to_pylist()], pa.string())
    distinct = pc.unique(canonical)
    return distinct, pc.index_in(canonical, value_set=distinct).to_numpy().astype(np.int64)


# ---- sightings -----------------------------------------------------------------------------


@dataclass
class _Window:
    hit: BlindHit
    start_us: int
    count: int = 0
    first_us: int = 0
    last_us: int = 0
    explanations: list[dict[str, Any]] = field(default_factory=list)


class BlindSightings:
    """Aggregates blind hits per (set entry, hour) into sightings for the owner alone."""

    def __init__(self, member: str, window_us: int = HOUR_US) -> None:
        self.member = member
        self.identity = member_identity_id(member)
        self.window_us = window_us
        self.windows: dict[tuple[str, str, int], _Window] = {}
        self.said: list[str] = []

    def add(self, hit: BlindHit) -> None:
        start = hit.ts_us - hit.ts_us % self.window_us
        key = (hit.set_id, hit.handle, start)
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = _Window(hit, start, first_us=hit.ts_us, last_us=hit.ts_us)
        w.count += 1
        w.first_us, w.last_us = min(w.first_us, hit.ts_us), max(w.last_us, hit.ts_us)
        if len(w.explanations) < MAX_EXPLANATIONS:
            w.explanations.append({"protected_by": hit.owner, "field": hit.field,
                                   "file": hit.file, "line": hit.line,
                                   "observed_at": format_ts(hit.ts_us)})
        if len(self.said) < 1_000:
            self.said.append(hit.say())

    def objects(self, stored: Callable[[str], dict[str, Any] | None] | None = None
                ) -> list[dict[str, Any]]:
        """One sighting per window (merged with its stored version when there is one)."""
        out = []
        stamp = format_ts(now_us())
        for w in self.windows.values():
            h = w.hit
            sid = deterministic_id(
                "sighting", f"{self.identity}|blind|{h.set_id}|{h.handle}|{w.start_us}")
            old = stored(sid) if stored else None
            count, first, last = w.count, format_ts(w.first_us), format_ts(w.last_us)
            expl = list(w.explanations)
            if old is not None:
                count = max(count, int(old.get("count", 0)))
                first = min(first, str(old.get("first_seen", first)))
                last = max(last, str(old.get("last_seen", last)))
                expl = [*old.get(EXPLANATION, []),
                        *(e for e in expl if e not in old.get(EXPLANATION, []))]
                expl = expl[:MAX_EXPLANATIONS]
            obj = {
                "type": "sighting",
                "spec_version": "2.1",
                "id": sid,
                "created": old["created"] if old else stamp,
                "modified": max(stamp, str(old["modified"])) if old else stamp,
                "created_by_ref": self.identity,
                "sighting_of_ref": h.set_id,
                "where_sighted_refs": [self.identity],
                "count": count,
                "first_seen": first,
                "last_seen": last,
                "summary": False,
                "description": f"A protected indicator of {h.owner} matched telemetry of "
                               f"{self.member} ({h.field}).",
                "object_marking_refs": [tlp_marking_ref(TLP.AMBER_STRICT)],
                AUDIENCE_PROPERTY: sorted({h.owner, self.member}),
                HANDLE_PROPERTY: h.handle,
                OWNER_PROPERTY: h.owner,
                EXPLANATION: expl,
            }
            if old is not None and {k: v for k, v in old.items() if k != "modified"} == \
                    {k: v for k, v in obj.items() if k != "modified"}:
                continue
            out.append(obj)
        return out


# ---- a blind hunt over files -----------------------------------------------------------------


@dataclass
class HuntResult:
    hits: list[BlindHit]
    sightings: int
    events: int
    resolved: int = 0
    asked_owner: int = 0
    files: list[Any] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # set id -> why it was not resolved


def hunt(store: Any, member: str, paths: list[Any], send_for: Callable[[str], Any], *,
         fmt: str | None = None, sets: list[BlindSet] | None = None) -> HuntResult:
    """Match the telemetry files `paths` against every blind set this node holds (but its
    own), resolving with each owner over `send_for(owner)`, and store the sightings."""
    from shieldwall.blind.sets import held_sets
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.sightings import Sightings
    from shieldwall.store import Provenance

    sets = list(held_sets(store, exclude_owner=member)) if sets is None else sets
    resolvers: dict[str, Resolver] = {}
    for s in sets:
        pk = s.public_key.hex()
        if pk not in resolvers:
            resolvers[pk] = Resolver(store, s.public_key, s.epoch, send_for(s.owner),
                                     processes=os.cpu_count() or 1)
    hits: list[BlindHit] = []
    sightings = BlindSightings(member)

    def record(hit: BlindHit) -> None:
        hits.append(hit)
        sightings.add(hit)

    matcher = BlindMatcher(sets, resolvers, record, learn=False)
    # Pass 1: the distinct values of the telemetry, resolved in large batches.
    first = Hunter(IndicatorIndex(), Sightings(member_identity_id(member), TLP.AMBER),
                   sink=matcher.learn)
    first.run(paths, fmt)
    matcher.flush()
    # Pass 2: the event path, a lookup, over what pass 1 kept (or the files read again).
    hunter = Hunter(IndicatorIndex(), Sightings(member_identity_id(member), TLP.AMBER),
                    sink=matcher.feed)
    if matcher.match_kept():
        stats, hunter.files = first.stats, first.files
    else:
        stats = hunter.run(paths, fmt)

    def stored(sid: str) -> dict[str, Any] | None:
        row = store.get(sid)
        return row.obj() if row is not None else None

    objs = sightings.objects(stored)
    if objs:
        store.put_many(objs, Provenance(member, "hunt"))
    return HuntResult(hits, len(objs), stats.events,
                      sum(r.stats.asked for r in resolvers.values()),
                      sum(r.stats.asked - r.stats.cached for r in resolvers.values()),
                      hunter.files, matcher.failed)
