"""The compiled indicator index: candidate lookup over whole Arrow columns, never per indicator.

Each active indicator contributes its trigger atoms (see `exact.triggers`) to one structure per
STIX path:

- `=` and `IN`: a dict value -> keys (hash set). A batch column is dictionary-encoded, so each
  distinct value is looked up once (logs repeat addresses and names heavily); when the column has
  more distinct values than the set, Arrow's `is_in` probes instead.
- `ISSUBSET 'cidr'` on addresses: sorted elementary intervals over integers, probed with
  `numpy.searchsorted` (IPv4 as 32-bit, IPv6 by its upper 64 bits; exact evaluation settles
  prefixes longer than /64).
- `LIKE '%.example.org'`: a map of label suffixes; a domain is looked up by each of its proper
  label suffixes (the reversed-label trie, flattened into one dict).
- `MATCHES` and any other `LIKE`: one Hyperscan database per path (automata, no backtracking, so
  a pathological expression cannot stall a hunt). An expression Hyperscan refuses is reported.

Adding or removing an indicator touches only its own entries; the interval arrays and the
Hyperscan database of a path are rebuilt lazily, on the next probe, when their path changed.
A candidate is (row, indicator); the whole pattern is then evaluated exactly on that row.
"""

from __future__ import annotations

import heapq
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.detect.exact import Atom, Unindexable, triggers
from shieldwall.detect.readers.base import ALIASES, IP_COLUMNS
from shieldwall.stix.timestamps import now_us, parse_ts

WARNINGLIST_TAG = "warninglist"
_IP_PATHS = {"ipv4-addr:value", "ipv6-addr:value", *IP_COLUMNS}
_LOWER_PATHS = ("domain-name:value", "file:hashes.", "x509-certificate:hashes.")

Key = tuple[int, int]  # (indicator slot, atom number)


@dataclass
class Compiled:
    id: str
    pattern: str
    name: str
    atoms: list[Atom]
    multi: bool
    valid_until_us: int | None
    modified: str


@dataclass
class Rejected:
    id: str
    name: str
    pattern: str
    reason: str


@dataclass
class Candidate:
    row: int
    indicator: Compiled
    atom: Atom
    column: str
    value: str


@dataclass
class _Intervals:
    entries: dict[Key, tuple[int, int]] = field(default_factory=dict)
    starts: Any = None  # elementary segment starts (sorted)
    keys: list[list[Key]] = field(default_factory=list)
    dirty: bool = True

    def build(self) -> None:
        points = sorted({p for lo, hi in self.entries.values() for p in (lo, hi + 1)})
        # Integers above 2**63 (IPv6 upper halves) stay exact in uint64.
        self.starts = np.array(points, dtype=np.uint64) if points else np.zeros(0, np.uint64)
        cover: list[list[Key]] = [[] for _ in points]
        for key, (lo, hi) in self.entries.items():
            i = int(np.searchsorted(self.starts, np.uint64(lo)))
            while i < len(points) and points[i] <= hi:
                cover[i].append(key)
                i += 1
        self.keys = cover
        self.dirty = False

    def lookup(self, values: Any) -> list[list[Key]]:
        if self.dirty:
            self.build()
        if not len(self.starts):
            return [[] for _ in values]
        pos = np.searchsorted(self.starts, values, side="right") - 1
        return [self.keys[p] if p >= 0 else [] for p in pos.tolist()]


@dataclass
class _Regexes:
    entries: dict[Key, str] = field(default_factory=dict)
    db: Any = None
    ids: list[Key] = field(default_factory=list)
    dirty: bool = True

    def build(self) -> None:
        import hyperscan

        self.ids = list(self.entries)
        if not self.ids:
            self.db = None
        else:
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            db.compile(
                expressions=[self.entries[k].encode() for k in self.ids],
                ids=list(range(len(self.ids))),
                flags=[hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
                       | hyperscan.HS_FLAG_UTF8] * len(self.ids),
            )
            self.db = db
        self.dirty = False

    def scan(self, value: str) -> list[Key]:
        if self.dirty:
            self.build()
        if self.db is None:
            return []
        found: list[Key] = []

        def on_match(idx: int, _f: int, _t: int, _fl: int, _ctx: Any) -> None:
            found.append(self.ids[idx])

        self.db.scan(value.encode(), match_event_handler=on_match)
        return found


def _check_regex(expr: str) -> str | None:
    """None if Hyperscan compiles `expr`, else the reason."""
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[expr.encode()], ids=[0],
                   flags=[hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
                          | hyperscan.HS_FLAG_UTF8])
    except Exception as exc:
        return f"regular expression not supported by the matcher (no backtracking): {exc}"
    return None


def like_to_regex(like: str) -> str:
    """STIX LIKE (`%` any run, `_` one character) as an anchored regular expression."""
    out = []
    for ch in like:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "^" + "".join(out) + "$"


def _ip_range(text: str, path: str) -> tuple[int, int, int]:
    """(version, lo, hi) of a CIDR or address; IPv6 by its upper 64 bits."""
    net = ipaddress.ip_network(text, strict=False)
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if net.version == 6:
        return 6, lo >> 64, hi >> 64
    return 4, lo, hi


def _ip_int(text: str) -> tuple[int, int] | None:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return None
    return (4, int(a)) if a.version == 4 else (6, int(a) >> 64)


def _norm(path: str, value: str) -> str:
    return value.lower() if path.startswith(_LOWER_PATHS) else value


def columns_for(path: str, names: Iterable[str]) -> list[str]:
    present = set(names)
    out = [c for c in ALIASES.get(path, ()) if c in present]
    if path in present and path not in out:
        out.append(path)
    return out


class IndicatorIndex:
    """Active indicators compiled for column-wise lookup. Not thread-safe; one per hunt."""

    def __init__(self, *, force_warninglisted: bool = False) -> None:
        self.force_warninglisted = force_warninglisted
        self.indicators: dict[int, Compiled] = {}
        self._slot_of: dict[str, int] = {}
        self._next_slot = 0
        self.rejected: dict[str, Rejected] = {}
        self._eq: dict[str, dict[str, list[Key]]] = defaultdict(dict)
        self._eq_arrays: dict[str, pa.Array] = {}
        self._suffix: dict[str, dict[str, list[Key]]] = defaultdict(dict)
        self._cidr: dict[tuple[str, int], _Intervals] = defaultdict(_Intervals)
        self._regex: dict[str, _Regexes] = defaultdict(_Regexes)
        self._expiry: list[tuple[int, str, str]] = []  # (valid_until, id, modified)
        self._cursor: int | None = None
        self._warninglisted: set[str] = set()

    # ---- building ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.indicators)

    def add(self, indicator: dict[str, Any], now: int | None = None) -> Rejected | None:
        """Compile one indicator (replacing an older version); inactive ones are removed."""
        iid = indicator.get("id", "")
        self.remove(iid)
        now = now_us() if now is None else now
        name = str(indicator.get("name") or "")
        pattern = indicator.get("pattern")
        if indicator.get("revoked") or not isinstance(pattern, str):
            return None
        if indicator.get("pattern_type", "stix") != "stix":
            return self._reject(iid, name, pattern, f"pattern_type "
                                f"{indicator.get('pattern_type')!r} is not matched on telemetry")
        if iid in self._warninglisted and not self.force_warninglisted:
            return None
        try:
            if parse_ts(indicator.get("valid_from", "1970-01-01T00:00:00Z")) > now:
                return None
            until = indicator.get("valid_until")
            until_us = parse_ts(until) if until else None
        except ValueError as exc:
            return self._reject(iid, name, pattern, str(exc))
        if until_us is not None and until_us <= now:
            return None
        try:
            trig = triggers(pattern)
        except (Unindexable, ValueError) as exc:
            return self._reject(iid, name, pattern, str(exc))
        for atom in trig.atoms:
            reason = self._unsupported(atom)
            if reason:
                return self._reject(iid, name, pattern, f"{atom.text}: {reason}")
        slot = self._next_slot
        self._next_slot += 1
        comp = Compiled(iid, pattern, name, trig.atoms, trig.multi, until_us,
                        str(indicator.get("modified", "")))
        self.indicators[slot] = comp
        self._slot_of[iid] = slot
        self.rejected.pop(iid, None)
        for n, atom in enumerate(trig.atoms):
            self._put(atom, (slot, n))
        if until_us is not None:
            heapq.heappush(self._expiry, (until_us, iid, comp.modified))
        return None

    def _reject(self, iid: str, name: str, pattern: str, reason: str) -> Rejected:
        r = Rejected(iid, name, pattern, reason)
        self.rejected[iid] = r
        return r

    def _unsupported(self, atom: Atom) -> str | None:
        if atom.op == "ISSUBSET":
            if atom.path not in _IP_PATHS:
                return "ISSUBSET is indexed for addresses only"
            try:
                _ip_range(atom.values[0], atom.path)
            except ValueError:
                return f"not a CIDR: {atom.values[0]!r}"
        if atom.op == "MATCHES":
            return _check_regex(atom.values[0])
        if atom.op == "LIKE" and not _is_simple_like(atom.values[0]):
            return _check_regex(like_to_regex(atom.values[0]))
        return None

    def _put(self, atom: Atom, key: Key, remove: bool = False) -> None:
        path = atom.path
        if atom.op in ("=", "IN") or (atom.op == "LIKE" and not any(
                c in atom.values[0] for c in "%_")):
            table = self._eq[path]
            for v in atom.values:
                v = _norm(path, v)
                if remove:
                    keys = table.get(v, [])
                    if key in keys:
                        keys.remove(key)
                    if not keys:
                        table.pop(v, None)
                else:
                    table.setdefault(v, []).append(key)
            self._eq_arrays.pop(path, None)
        elif atom.op == "LIKE" and _is_simple_like(atom.values[0]):
            suffix = _norm(path, atom.values[0][2:])
            table = self._suffix[path]
            if remove:
                keys = table.get(suffix, [])
                if key in keys:
                    keys.remove(key)
                if not keys:
                    table.pop(suffix, None)
            else:
                table.setdefault(suffix, []).append(key)
        elif atom.op == "ISSUBSET":
            version, lo, hi = _ip_range(atom.values[0], path)
            iv = self._cidr[(path, version)]
            if remove:
                iv.entries.pop(key, None)
            else:
                iv.entries[key] = (lo, hi)
            iv.dirty = True
        else:
            expr = atom.values[0] if atom.op == "MATCHES" else like_to_regex(atom.values[0])
            rx = self._regex[path]
            if remove:
                rx.entries.pop(key, None)
            else:
                rx.entries[key] = expr
            rx.dirty = True

    def remove(self, iid: str) -> bool:
        slot = self._slot_of.pop(iid, None)
        if slot is None:
            return False
        comp = self.indicators.pop(slot)
        for n, atom in enumerate(comp.atoms):
            self._put(atom, (slot, n), remove=True)
        return True

    def expire(self, now: int | None = None) -> int:
        """Drop indicators whose valid_until has passed; returns how many."""
        now = now_us() if now is None else now
        dropped = 0
        while self._expiry and self._expiry[0][0] <= now:
            _, iid, modified = heapq.heappop(self._expiry)
            slot = self._slot_of.get(iid)
            if slot is not None and self.indicators[slot].modified == modified:
                self.remove(iid)
                dropped += 1
        return dropped

    def sync(self, store: Any, now: int | None = None) -> int:
        """Bring the index up to date with the store: only versions added since the last sync.

        Revoked versions remove their indicator; warning-listed ones (store tag
        `warninglist`) are left out unless `force_warninglisted`.
        """
        from shieldwall.store import Query

        self._warninglisted = {i for i, _ in store.tagged(WARNINGLIST_TAG)}
        if not self.force_warninglisted:
            for iid in list(self._slot_of):
                if iid in self._warninglisted:
                    self.remove(iid)
        seen = 0
        for row in store.iter_query(Query(types=["indicator"], after_seq=self._cursor)):
            self._cursor = row.seq
            self.add(row.obj(), now)
            seen += 1
        self.expire(now)
        return seen

    # ---- probing -------------------------------------------------------------------

    def candidates(self, table: pa.Table) -> list[Candidate]:
        names = table.column_names
        out: list[Candidate] = []
        paths = set(self._eq) | set(self._suffix) | {p for p, _ in self._cidr} | set(self._regex)
        for path in paths:
            for col_name in columns_for(path, names):
                out.extend(self._probe(path, col_name, table.column(col_name)))
        return out

    def _probe(self, path: str, col_name: str, col: pa.ChunkedArray) -> list[Candidate]:
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            col = col.combine_chunks()
            parents = pc.list_parent_indices(col).to_numpy()
            flat = pc.list_flatten(col)
        else:
            parents = None
            flat = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if not pa.types.is_string(flat.type) and not pa.types.is_large_string(flat.type):
            flat = pc.cast(flat, pa.string())
        enc = flat.dictionary_encode()
        dictionary: pa.Array = enc.dictionary
        if len(dictionary) == 0:
            return []
        hits: dict[int, list[tuple[Key, str]]] = {}  # dictionary position -> keys
        eq = self._eq.get(path)
        if eq:
            if len(dictionary) > 4 * len(eq):
                arr = self._eq_arrays.get(path)
                if arr is None:
                    arr = self._eq_arrays[path] = pa.array(list(eq), pa.string())
                positions = np.flatnonzero(
                    pc.is_in(dictionary, value_set=arr).to_numpy(zero_copy_only=False))
                values = dictionary.take(pa.array(positions)).to_pylist()
                for pos, v in zip(positions.tolist(), values, strict=True):
                    hits.setdefault(pos, []).extend((k, "=") for k in eq[v])
            else:
                for pos, v in enumerate(dictionary.to_pylist()):
                    keys = eq.get(v)
                    if keys:
                        hits.setdefault(pos, []).extend((k, "=") for k in keys)
        suffix = self._suffix.get(path)
        if suffix:
            for pos, v in enumerate(dictionary.to_pylist()):
                if not v:
                    continue
                labels = v.split(".")
                for i in range(1, len(labels)):
                    keys = suffix.get(".".join(labels[i:]))
                    if keys:
                        hits.setdefault(pos, []).extend((k, "LIKE") for k in keys)
        for version in (4, 6):
            iv = self._cidr.get((path, version))
            if iv is None or not iv.entries:
                continue
            ints = [_ip_int(v) if v else None for v in dictionary.to_pylist()]
            pos_v = [(p, x[1]) for p, x in enumerate(ints) if x is not None and x[0] == version]
            if pos_v:
                found = iv.lookup(np.array([x for _, x in pos_v], dtype=np.uint64))
                for (pos, _), keys in zip(pos_v, found, strict=True):
                    if keys:
                        hits.setdefault(pos, []).extend((k, "ISSUBSET") for k in keys)
        rx = self._regex.get(path)
        if rx is not None and rx.entries:
            for pos, v in enumerate(dictionary.to_pylist()):
                if v is not None:
                    for k in rx.scan(v):
                        hits.setdefault(pos, []).append((k, "MATCHES"))
        if not hits:
            return []
        indices = enc.indices.to_numpy(zero_copy_only=False)
        hit_pos = np.fromiter(hits, dtype=np.int64)
        rows = np.flatnonzero(np.isin(indices, hit_pos))
        out: list[Candidate] = []
        dict_values = dictionary.take(pa.array(hit_pos)).to_pylist()
        value_of = dict(zip(hit_pos.tolist(), dict_values, strict=True))
        for r in rows.tolist():
            pos = int(indices[r])
            row = int(parents[r]) if parents is not None else r
            for (slot, n), _ in hits[pos]:
                comp = self.indicators.get(slot)
                if comp is not None:
                    out.append(Candidate(row, comp, comp.atoms[n], col_name, value_of[pos]))
        return out

    def stats(self) -> dict[str, int]:
        return {
            "indicators": len(self.indicators),
            "rejected": len(self.rejected),
            "equality_values": sum(len(t) for t in self._eq.values()),
            "suffixes": sum(len(t) for t in self._suffix.values()),
            "cidrs": sum(len(iv.entries) for iv in self._cidr.values()),
            "regexes": sum(len(r.entries) for r in self._regex.values()),
        }


def _is_simple_like(like: str) -> bool:
    """`%.example.org`: a domain-suffix LIKE with no other wildcard."""
    return like.startswith("%.") and not any(c in like[2:] for c in "%_")
