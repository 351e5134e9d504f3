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

import contextlib
import heapq
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.detect.exact import (
    Atom,
    Triggers,
    Unindexable,
    _fast_path,
    _unescape,
    refusal,
    triggers,
)
from shieldwall.detect.readers.base import ALIASES, HOST_COLUMNS, IP_COLUMNS
from shieldwall.stix import values as canon
from shieldwall.stix.timestamps import now_us, parse_ts

WARNINGLIST_TAG = "warninglist"
_IP_PATHS = {"ipv4-addr:value", "ipv6-addr:value", *IP_COLUMNS}

# A key is `slot << _SHIFT | atom number`: one int per entry rather than a tuple, which keeps
# the index at ~0.5 KiB per equality indicator at 1M indicators.
Key = int
_SHIFT = 16
_MASK = (1 << _SHIFT) - 1


@dataclass(slots=True)
class Compiled:
    id: str
    pattern: str
    name: str
    # The pattern's trigger atoms; None until first needed (a hit, a removal): indicators
    # compiled in bulk keep only their index entries, ~1/3 of the memory of Atom objects.
    cached_atoms: list[Atom] | None
    multi: bool
    valid_until_us: int | None
    modified: str
    direct: bool = False  # see exact.direct_match

    @property
    def atoms(self) -> list[Atom]:
        if self.cached_atoms is None:
            self.cached_atoms = triggers(self.pattern).atoms
        return self.cached_atoms


@dataclass
class Rejected:
    id: str
    name: str
    pattern: str
    reason: str


@dataclass(slots=True)
class Candidate:
    row: int
    indicator: Compiled
    atom: Atom
    column: str
    value: Any
    is_string: bool = True  # the column holds strings (not numbers cast for the lookup)


def ipv4_ints(arr: pa.Array | pa.ChunkedArray) -> tuple[Any, Any]:
    """(positions, uint32 values) of the canonical dotted-quad IPv4 strings in `arr`.

    Parsed by numpy straight from the Arrow buffers: each candidate string (7-15 bytes) is a
    row of a 15-byte window over the data, read by a 15-step state machine over all rows at
    once (~0.25 s per million addresses, measured 25 % under the one-RE2-pass parse it
    replaces; the `ipaddress` loop before that cost ~25 us per address). It accepts exactly
    what `ipaddress.IPv4Address` does: four decimal octets 0-255 without leading zeros;
    anything else (IPv6, junk, empty, null) is simply absent from the result, so a
    malformed address is a non-match, never an error.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    empty = np.zeros(0, np.int64), np.zeros(0, np.uint32)
    if len(arr) == 0:
        return empty
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=len(arr) + 1,
                            offset=arr.offset * 4)
    lengths = np.diff(offsets)
    cand = (lengths >= 7) & (lengths <= 15)
    if arr.null_count:
        cand &= np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    pos = np.flatnonzero(cand)
    if not len(pos):
        return empty
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(
        0, np.uint8)
    data = np.concatenate([data[:offsets[-1]], np.zeros(16, np.uint8)])
    window = np.lib.stride_tricks.as_strided(data, shape=(len(data) - 15, 15), strides=(1, 1))
    mat = window[offsets[pos]]
    lens = lengths[pos]
    n = len(pos)
    value = np.zeros(n, np.uint32)
    octet = np.zeros(n, np.uint16)
    digits = np.zeros(n, np.uint8)
    dots = np.zeros(n, np.uint8)
    lead_zero = np.zeros(n, dtype=bool)
    ok = np.ones(n, dtype=bool)
    for j in range(15):
        c = mat[:, j]
        active = lens > j
        d = c - np.uint8(48)  # wraps for bytes below '0'
        is_digit = (d <= 9) & active
        is_dot = (c == 46) & active
        ok &= ~active | is_digit | is_dot
        ok &= ~(is_digit & lead_zero)  # a digit after an octet's leading zero
        ok &= ~(is_dot & ((digits == 0) | (octet > 255)))
        value = np.where(is_dot, (value << np.uint32(8)) | octet, value)
        lead_zero = np.where(is_dot, False, lead_zero | (is_digit & (digits == 0) & (d == 0)))
        octet = np.where(is_dot, 0, np.where(is_digit, octet * np.uint16(10) + d, octet)
                         ).astype(np.uint16)
        digits = np.where(is_dot, 0, digits + is_digit).astype(np.uint8)
        ok &= digits <= 3
        dots += is_dot
    ok &= (dots == 3) & (digits >= 1) & (octet <= 255)
    value = (value << np.uint32(8)) | octet
    return pos[ok].astype(np.int64), value[ok].astype(np.uint32)


class _ByRow(dict[str, list[int]]):
    """Keys per hit position (CIDR, suffix, regex hits); equality hits are keyed by value."""


def _nonzero(mask: Any) -> Any:
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return pc.indices_nonzero(pc.fill_null(mask, False)).to_numpy().astype(np.int64)


class _Column:
    """One batch column, flattened once; its IPv4 parse and dictionary computed on demand."""

    def __init__(self, col: pa.ChunkedArray | pa.Array) -> None:
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        self.parents: Any = None
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            self.parents = pc.list_parent_indices(col).to_numpy()
            col = pc.list_flatten(col)
        self.is_string = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        self.flat: pa.Array = col if self.is_string else pc.cast(col, pa.string())
        self._ip4: tuple[Any, Any] | None = None
        self._ip6: tuple[Any, Any] | None = None
        self._enc: tuple[pa.Array, Any] | None = None
        self._hosts: _Column | None = None

    def ipv4(self) -> tuple[Any, Any]:
        """(positions, integers) of the IPv4 addresses. Logs repeat addresses heavily, so
        the column is dictionary-encoded and only its distinct values are parsed when they
        are fewer than half the rows (the encoding is reused by suffix and regex lookups).
        Encoded unless a 2,048-value sample has (almost) no repeat: the parse of all rows
        costs 4x the encoding (40 ms against 10 ms per 242,000 rows), and a sample whose
        values are mostly distinct is still worth it (50,000 servers in 250,000 rows give
        ~40 repeats in 2,048); only a column that looks unique skips the encoding (~15 ms
        for nothing)."""
        if self._ip4 is None:
            if len(self.flat) >= 4096 and (self._enc is not None or not self._unique()):
                dictionary, indices = self.encoded()
                if len(dictionary) * 2 <= len(self.flat):
                    dpos, dvals = ipv4_ints(dictionary)
                    ok = np.zeros(len(dictionary) + 1, dtype=bool)  # [-1]: a null value
                    ok[dpos] = True
                    lut = np.zeros(len(dictionary) + 1, dtype=np.uint32)
                    lut[dpos] = dvals
                    pos = np.flatnonzero(ok[indices])
                    self._ip4 = (pos.astype(np.int64), lut[indices[pos]])
                    return self._ip4
            self._ip4 = ipv4_ints(self.flat)
        return self._ip4

    def ipv6_upper(self) -> tuple[Any, Any]:
        """(positions, upper 64 bits) of IPv6 addresses; `ipaddress` per distinct value, as
        only the rows holding a colon are looked at (IPv4-dominated logs have few)."""
        if self._ip6 is None:
            pos = _nonzero(pc.match_substring(self.flat, ":"))
            values = self.flat.take(pa.array(pos)).to_pylist() if len(pos) else []
            ints: dict[str, int | None] = {}
            for v in set(values):
                try:
                    a = ipaddress.IPv6Address(v)
                    ints[v] = int(a) >> 64
                except ValueError:
                    ints[v] = None
            keep = [i for i, v in enumerate(values) if ints[v] is not None]
            self._ip6 = (pos[keep], np.array([ints[values[i]] for i in keep], dtype=np.uint64))
        return self._ip6

    def _unique(self) -> bool:
        """Whether the first 2,048 values repeat fewer than 8 times (see `ipv4`)."""
        sample = self.flat.slice(0, 2048)
        return pc.count_distinct(sample).as_py() > len(sample) - sample.null_count - 8

    def _repetitive(self) -> bool:
        """Whether a sample of 2,048 values has at most half distinct: only then do the
        equality and regex lookups (`_eq_rows`, `_regex_rows`) dictionary-encode the
        column; a near-unique one is not worth it. (`ipv4` has its own, looser test,
        `_unique`.)"""
        if self._enc is not None:
            return len(self._enc[0]) * 2 <= len(self.flat)
        sample = self.flat.slice(0, 2048)
        return pc.count_distinct(sample).as_py() * 2 <= len(sample)

    def hosts(self) -> _Column:
        """The values of an address column that are not addresses (host names), as a column
        of their own whose `parents` lead back to the rows. Address-only columns (the usual
        Zeek conn log) cost one pass over the IPv4 positions and a colon search."""
        if self._hosts is None and len(self.ipv4()[0]) == len(self.flat) - self.flat.null_count:
            self._hosts = self._subset(np.zeros(0, np.int64))  # all IPv4: the usual case
        if self._hosts is None:
            keep = pc.fill_null(pc.invert(pc.match_substring(self.flat, ":")), False)
            mask = np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)
            mask[self.ipv4()[0]] = False
            self._hosts = self._subset(np.flatnonzero(mask))
        return self._hosts

    def _subset(self, pos: Any) -> _Column:
        """The values at `pos` as a column whose `parents` lead back to the rows."""
        sub = _Column.__new__(_Column)
        sub.flat = self.flat.take(pa.array(pos, pa.int64()))
        sub.is_string = self.is_string
        sub.parents = self.parents[pos] if self.parents is not None else pos
        sub._ip4 = sub._ip6 = sub._enc = sub._hosts = None
        return sub

    def encoded(self) -> tuple[pa.Array, Any]:
        if self._enc is None:
            enc = self.flat.dictionary_encode()
            self._enc = (enc.dictionary, pc.fill_null(enc.indices, -1).to_numpy())
        return self._enc


@dataclass
class _Intervals:
    entries: dict[Key, tuple[int, int]] = field(default_factory=dict)
    starts: Any = None  # elementary segment starts (sorted)
    keys: list[list[Key]] = field(default_factory=list)
    nonempty: Any = None
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
        self.nonempty = np.array([bool(c) for c in cover], dtype=bool)
        self.dirty = False


def _joinable(expr: str) -> str | None:
    """`expr` for a scan of many values joined into one buffer, or None when it cannot be.

    The buffer frames every value as `\\n value \\x00`. An expression whose only anchors
    are a leading `^` and a trailing `$` matches a value iff, with `^` written as that
    newline and `$` as that NUL, it matches the buffer within the value's frame (`.` does
    not match the newline, so a match stays in one frame; a class that matches a newline
    can span frames: a false candidate, which exact evaluation turns away, never a missed
    one). Two different bytes, so `^$` cannot match between two frames. Any other anchor
    (`^`/`$` elsewhere, `\\A`, `\\Z`, `\\z`, an inline flag before `^`) keeps the
    expression on the per-value scan."""
    body: list[str] = []
    i, in_class = 0, False
    while i < len(expr):
        c = expr[i]
        if c == "\\":
            if expr[i + 1:i + 2] in ("A", "Z", "z", "G"):
                return None
            body.append(expr[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            body.append(c)
        elif c == "[":
            in_class = True
            body.append(c)
            if expr[i + 1:i + 2] == "^":  # a negated class, not an anchor
                body.append("^")
                i += 1
            if expr[i + 1:i + 2] == "]":  # `[]` / `[^]`: a literal `]` first in the class
                body.append("]")
                i += 1
        elif c == "^" and i == 0:
            body.append("\\n")
        elif c == "$" and i == len(expr) - 1:
            body.append("\\x00")
        elif c in "^$":
            return None
        else:
            body.append(c)
        i += 1
    return "".join(body) if not in_class else None


@dataclass
class _Regexes:
    """One path's MATCHES / general LIKE expressions as Hyperscan databases.

    `db` holds the expressions a joined scan can take (`_joinable`): a batch's distinct values
    are scanned in one call (~0.01 s for 300,000 URLs against 10,000 expressions instead of
    ~0.24 s of one call per value from Python). It reports every match end, so an expression
    that matches at most offsets (`a.*`) would flood the callback: past a budget of about one
    report per value the scan stops and the path falls back, until it changes, to one call
    per value with SINGLEMATCH (`single_db`, compiled then), the bound the index had before.
    `per_value` holds the expressions that are never joinable, always scanned per value.
    """

    entries: dict[Key, str] = field(default_factory=dict)
    db: Any = None
    ids: list[Key] = field(default_factory=list)
    per_value: Any = None
    per_value_ids: list[Key] = field(default_factory=list)
    single_db: Any = None
    noisy: bool = False
    dirty: bool = True

    def build(self) -> None:
        joined: list[tuple[Key, str]] = []
        alone: list[Key] = []
        for key, expr in self.entries.items():
            j = _joinable(expr)
            if j is None:
                alone.append(key)
            else:
                joined.append((key, j))
        self.noisy, self.single_db = False, None
        try:
            self.db = _hs_db([j for _, j in joined], single=False)
            self.ids = [k for k, _ in joined]
        except Exception:  # a rewritten expression refused: scan them all as they were
            alone = list(self.entries)
            self.db, self.ids = None, []
        self.per_value = _hs_db([self.entries[k] for k in alone], single=True)
        self.per_value_ids = alone
        self.dirty = False

    def scan(self, value: str) -> list[Key]:
        """Keys of the expressions matching one value."""
        return sorted(set(self.scan_values(pa.array([value], pa.string()))[0]))

    def scan_values(self, values: pa.Array) -> dict[int, list[Key]]:
        """value position -> keys of the expressions it matches (a superset for joined
        expressions, see `_joinable`), for the non-null strings of `values`."""
        if self.dirty:
            self.build()
        out: dict[int, list[Key]] = defaultdict(list)
        if self.db is not None and not self.noisy:
            try:
                self._joined_scan(values, out)
            except _Flooded:
                self.noisy = True
                out.clear()
        if self.per_value is None and not (self.db is not None and self.noisy):
            return out
        py = pc.cast(values, pa.binary()).to_pylist()
        if self.db is not None and self.noisy:
            if self.single_db is None:
                self.single_db = _hs_db([self.entries[k] for k in self.ids], single=True)
            _per_value_scan(self.single_db, self.ids, py, out)
        if self.per_value is not None:
            _per_value_scan(self.per_value, self.per_value_ids, py, out)
        return out

    def _joined_scan(self, values: pa.Array, out: dict[int, list[Key]]) -> None:
        import hyperscan

        values = pc.cast(values, pa.string())
        # Values holding a newline or NUL (rare in logs) are scanned alone, framed the same way.
        odd = pc.fill_null(pc.or_(pc.match_substring(values, "\n"),
                                  pc.match_substring(values, "\x00")), True)
        odd_pos = _nonzero(pc.and_(odd, values.is_valid()))
        if len(odd_pos):
            for i, v in zip(odd_pos.tolist(), values.take(pa.array(odd_pos)).to_pylist(),
                            strict=True):
                self._joined_scan_one(i, v.encode(), out)
        keep_mask = pc.invert(odd)
        keep = _nonzero(keep_mask)
        if not len(keep):
            return
        parts = pc.cast(values.filter(keep_mask), pa.binary())
        lengths = pc.binary_length(parts).to_numpy().astype(np.int64)
        buf = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(parts)], pa.int32()),
                                                      parts), b"\0\n")[0].as_py()
        # Value i owns the bytes of its frame, from its newline to its NUL, so a match belongs
        # to the value owning its last byte (an empty match: the byte before it, still in
        # the frame).
        owned_from = np.concatenate([[0], np.cumsum(lengths + 2)[:-1]])
        ends: list[int] = []
        exprs: list[int] = []
        budget = len(parts) + 1000

        def on_match(idx: int, _f: int, to: int, _fl: int, _ctx: Any) -> bool:
            ends.append(to)
            exprs.append(idx)
            return len(ends) > budget  # True stops the scan

        try:
            self.db.scan(b"\n" + buf + b"\0", match_event_handler=on_match)
        except hyperscan.ScanTerminated as exc:
            raise _Flooded from exc
        if not ends:
            return
        last = np.maximum(np.array(ends, dtype=np.int64) - 1, 0)
        at = keep[np.searchsorted(owned_from, last, side="right") - 1].tolist()
        for a, x in sorted(set(zip(at, exprs, strict=True))):
            out[a].append(self.ids[x])

    def _joined_scan_one(self, pos: int, value: bytes, out: dict[int, list[Key]]) -> None:
        import hyperscan

        found: set[int] = set()

        def on_match(idx: int, _f: int, _t: int, _fl: int, _ctx: Any) -> bool:
            found.add(idx)
            return len(found) >= len(self.ids)

        # Python's and Hyperscan's `$` also match before a final newline: both framings.
        for v in {value, value[:-1] if value.endswith(b"\n") else value}:
            with contextlib.suppress(hyperscan.ScanTerminated):
                self.db.scan(b"\n" + v + b"\0", match_event_handler=on_match)
        out[pos].extend(self.ids[x] for x in sorted(found))


class _Flooded(Exception):
    """A joined scan reported more matches than its budget."""


def _hs_db(exprs: list[str], *, single: bool) -> Any:
    """A block-mode Hyperscan database of `exprs` (None when empty)."""
    import hyperscan

    if not exprs:
        return None
    flags = hyperscan.HS_FLAG_ALLOWEMPTY | hyperscan.HS_FLAG_UTF8
    if single:
        flags |= hyperscan.HS_FLAG_SINGLEMATCH
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[e.encode() for e in exprs], ids=list(range(len(exprs))),
               flags=[flags] * len(exprs))
    return db


def _per_value_scan(db: Any, ids: list[Key], values: list[bytes],
                    out: dict[int, list[Key]]) -> None:
    """One SINGLEMATCH scan per value: the callback lists each matching expression once."""
    found: list[int] = []

    def on_match(idx: int, _f: int, _t: int, _fl: int, _ctx: Any) -> None:
        found.append(ids[idx])

    scan = db.scan
    for pos, v in enumerate(values):
        if v is not None:
            scan(v, match_event_handler=on_match)
            if found:
                out[pos].extend(found)
                found = []


# `[path = 'literal']` exactly as `exact._fast_triggers` reads it (same identifier and literal
# rules), so a bulk-compiled indicator has the atoms `triggers` would give it.
_BULK_EQ = (r"^\[(?P<path>[a-z][a-z0-9-]*:[A-Za-z_][A-Za-z0-9_]*"
            r"(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|'[A-Za-z0-9_-]+'))*) = "
            r"'(?P<lit>(?:[^'\\]|\\['\\])*)'\]$")


@lru_cache(maxsize=4096)
def _fast_path_cached(path: str) -> str:
    return _fast_path(path)


def _atom_regex(atom: Atom) -> str | None:
    """The regular expression an atom is matched with, if it needs one."""
    if atom.op == "MATCHES":
        return atom.values[0]
    if atom.op == "LIKE" and any(c in atom.values[0] for c in "%_") and not _is_simple_like(
            atom.values[0]):
        return like_to_regex(atom.values[0])
    return None


def _bad_regexes(exprs: list[str]) -> dict[str, str]:
    """expression -> reason, for those Hyperscan refuses: one compile when all are fine,
    bisection otherwise (Hyperscan's error does not say which expression failed)."""
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[e.encode() for e in exprs], ids=list(range(len(exprs))),
                   flags=[hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
                          | hyperscan.HS_FLAG_UTF8] * len(exprs))
    except Exception as exc:
        if len(exprs) == 1:
            return {exprs[0]: "regular expression not supported by the matcher "
                              f"(no backtracking): {exc}"}
        half = len(exprs) // 2
        return _bad_regexes(exprs[:half]) | _bad_regexes(exprs[half:])
    return {}


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


def _norm(path: str, value: str) -> str:
    """`value` in the canonical form of `path`'s kind (`stix.values`), the form readers give
    telemetry in: the index's keys and the rows' values meet as they are."""
    form = _form(path)
    return form(value) if form is not None else value


@lru_cache(maxsize=4096)
def _form(path: str) -> Any:
    return canon.canonicalizer(path)


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
        self._eq_ip: dict[str, tuple[Any, pa.Array | None]] = {}
        self._ip4_bitmap: dict[str, Any] = {}
        self._suffix_arrays: dict[str, dict[int, pa.Array]] = {}
        self._suffix: dict[str, dict[str, list[Key]]] = defaultdict(dict)
        self._cidr: dict[tuple[str, int], _Intervals] = defaultdict(_Intervals)
        self._regex: dict[str, _Regexes] = defaultdict(_Regexes)
        self._expiry: list[tuple[int, str, str]] = []  # (valid_until, id, modified)
        self._cursor: int | None = None
        self._warninglisted: set[str] = set()

    # ---- building ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.indicators)

    def get(self, iid: str) -> Compiled | None:
        """The compiled indicator `iid`, if it is active in the index."""
        slot = self._slot_of.get(iid)
        return None if slot is None else self.indicators.get(slot)

    def add(self, indicator: dict[str, Any], now: int | None = None) -> Rejected | None:
        """Compile one indicator (replacing an older version); inactive ones are removed."""
        rejected = self.add_many([indicator], now)
        return rejected[0] if rejected else None

    def add_many(self, indicators: Iterable[dict[str, Any]],
                 now: int | None = None) -> list[Rejected]:
        """Compile a batch of indicators; returns the ones rejected, each with its reason.

        The batch's regular expressions (MATCHES and general LIKE) are validated by one
        Hyperscan compile for all of them, not one per indicator (a failing batch is bisected
        to name the expressions at fault); everything else is per indicator and cheap.
        """
        now = now_us() if now is None else now
        admitted: list[tuple[str, str, str, int | None, str]] = []
        rejected: list[Rejected] = []
        for indicator in indicators:
            got = self._admit(indicator, now)
            if isinstance(got, Rejected):
                rejected.append(got)
            elif got is not None:
                admitted.append(got)
        if not admitted:
            return rejected
        # The common shape `[path = 'literal']`, read for the whole batch by one RE2 pass.
        found = pc.extract_regex(pa.array([a[2] for a in admitted], pa.string()), _BULK_EQ)
        bulk = np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        paths = pc.struct_field(found, [0]).to_pylist()
        literals = pc.struct_field(found, [1]).to_pylist()
        staged: list[tuple[str, str, str, Triggers, int | None, str]] = []
        touched: set[str] = set()
        for i, (iid, name, pattern, until_us, modified) in enumerate(admitted):
            if not bulk[i]:
                got = self._stage(iid, name, pattern, until_us, modified)
                if isinstance(got, Rejected):
                    rejected.append(got)
                else:
                    staged.append(got)
                continue
            path = _fast_path_cached(paths[i])
            lit = literals[i]
            if "\\" in lit:
                lit = _unescape(lit)
            if iid in self._slot_of:
                self.remove(iid)
            slot = self._next_slot
            self._next_slot += 1
            self.indicators[slot] = Compiled(iid, pattern, name, None, False, until_us,
                                             modified, True)
            self._slot_of[iid] = slot
            self.rejected.pop(iid, None)
            self._eq[path].setdefault(_norm(path, lit), []).append(slot << _SHIFT)
            touched.add(path)
            if until_us is not None:
                heapq.heappush(self._expiry, (until_us, iid, modified))
        for path in touched:
            self._changed(path)
        for iid, name, pattern, trig, until_us, modified in staged:
            self._commit(iid, name, pattern, trig, until_us, modified)
        # Regular expressions: each touched path's Hyperscan database is compiled now, once,
        # which is the validation too; when it fails, bisection names the expressions at
        # fault (Hyperscan does not) and their indicators are rejected.
        regex_paths = {a.path for st in staged for a in st[3].atoms
                       if _atom_regex(a) is not None}
        for path in regex_paths:
            rx = self._regex[path]
            try:
                rx.build()
            except Exception:
                bad = _bad_regexes(sorted(set(rx.entries.values())))
                for key, expr in list(rx.entries.items()):
                    if expr in bad:
                        comp = self.indicators[key >> _SHIFT]
                        atom = comp.atoms[key & _MASK]
                        self.remove(comp.id)
                        rejected.append(self._reject(comp.id, comp.name, comp.pattern,
                                                     f"{atom.text}: {bad[expr]}"))
                rx.build()
        return rejected

    def _admit(self, indicator: dict[str, Any], now: int,
               ) -> Rejected | tuple[str, str, str, int | None, str] | None:
        """An active STIX-pattern indicator as (id, name, pattern, valid_until, modified);
        None for revoked, not yet valid, expired or warning-listed ones. The old version of
        the indicator is removed."""
        iid = indicator.get("id", "")
        self.remove(iid)
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
        return iid, name, pattern, until_us, str(indicator.get("modified", ""))

    def _stage(self, iid: str, name: str, pattern: str, until_us: int | None, modified: str,
               ) -> Rejected | tuple[str, str, str, Triggers, int | None, str]:
        """Trigger atoms and the checks that need no regex engine."""
        try:
            trig = triggers(pattern)
        except (Unindexable, ValueError) as exc:
            return self._reject(iid, name, pattern, str(exc))
        reason = refusal(pattern, trig.multi)  # too costly to evaluate in bounded time
        if reason:
            return self._reject(iid, name, pattern, reason)
        for atom in trig.atoms:
            reason = self._unsupported(atom)
            if reason:
                return self._reject(iid, name, pattern, f"{atom.text}: {reason}")
        if len(trig.atoms) > _MASK:
            return self._reject(iid, name, pattern, f"more than {_MASK} comparisons")
        return iid, name, pattern, trig, until_us, modified

    def _commit(self, iid: str, name: str, pattern: str, trig: Triggers,
                until_us: int | None, modified: str) -> None:
        self.remove(iid)  # a second version of it in the same batch
        slot = self._next_slot
        self._next_slot += 1
        comp = Compiled(iid, pattern, name, trig.atoms, trig.multi, until_us, modified,
                        trig.direct)
        self.indicators[slot] = comp
        self._slot_of[iid] = slot
        self.rejected.pop(iid, None)
        for n, atom in enumerate(trig.atoms):
            self._put(atom, slot << _SHIFT | n)
        if until_us is not None:
            heapq.heappush(self._expiry, (until_us, iid, comp.modified))

    def _reject(self, iid: str, name: str, pattern: str, reason: str) -> Rejected:
        r = Rejected(iid, name, pattern, reason)
        self.rejected[iid] = r
        return r

    def _unsupported(self, atom: Atom) -> str | None:
        """Reasons found without the regex engine (regular expressions: `_bad_regexes`)."""
        if atom.op == "ISSUBSET":
            if atom.path not in _IP_PATHS:
                return "ISSUBSET is indexed for addresses only"
            try:
                _ip_range(atom.values[0], atom.path)
            except ValueError:
                return f"not a CIDR: {atom.values[0]!r}"
        return None

    def _put(self, atom: Atom, key: Key, remove: bool = False) -> None:
        """File one atom under its structure; the derived arrays of its path are dropped and
        rebuilt on the next probe (one rebuild per batch however many indicators changed)."""
        path = atom.path
        self._changed(path)
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

    def _changed(self, path: str) -> None:
        self._eq_arrays.pop(path, None)
        self._eq_ip.pop(path, None)
        self._ip4_bitmap.pop(path, None)
        self._suffix_arrays.pop(path, None)

    def remove(self, iid: str) -> bool:
        slot = self._slot_of.pop(iid, None)
        if slot is None:
            return False
        comp = self.indicators.pop(slot)
        for n, atom in enumerate(comp.atoms):
            self._put(atom, slot << _SHIFT | n, remove=True)
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
        batch: list[dict[str, Any]] = []
        for row in store.iter_query(Query(types=["indicator"], after_seq=self._cursor)):
            self._cursor = row.seq
            batch.append(row.obj())
            seen += 1
            if len(batch) >= 50_000:
                self.add_many(batch, now)
                batch = []
        self.add_many(batch, now)
        self.expire(now)
        return seen

    # ---- probing -------------------------------------------------------------------
    #
    # Figures (1M-line Zeek conn log, 2-core VM): the former per-distinct-value Python loop
    # (`ipaddress` per address, `to_pylist()` of each dictionary) ran at 34,000 events/s; the
    # column-wise version below spends ~0.1 s per million addresses, so reading dominates.

    def candidates(self, table: pa.Table) -> list[Candidate]:
        names = table.column_names
        out: list[Candidate] = []
        paths = set(self._eq) | set(self._suffix) | {p for p, _ in self._cidr} | set(self._regex)
        parsed: dict[str, _Column] = {}  # one IPv4 parse per column, shared by its paths
        for path in paths:
            for col_name in columns_for(path, names):
                col = parsed.get(col_name)
                if col is None:
                    col = parsed[col_name] = _Column(table.column(col_name))
                if path == "domain-name:value" and col_name in HOST_COLUMNS:
                    col = col.hosts()
                out.extend(self._probe(path, col_name, col))
        return out

    def _probe(self, path: str, col_name: str, col: _Column) -> list[Candidate]:
        flat = col.flat
        if len(flat) == 0:
            return []
        found: list[tuple[Any, list[list[int]] | dict[str, list[int]]]] = []
        eq = self._eq.get(path)
        if eq:
            if path in _IP_PATHS:
                ints4, strings = self._eq_split(path)
                if len(ints4):
                    pos, vals = col.ipv4()
                    if len(pos):
                        sel = self._ip4_filter(path)[vals >> 8]
                        pos, vals = pos[sel], vals[sel]
                        i = np.minimum(np.searchsorted(ints4, vals), len(ints4) - 1)
                        found.append((pos[ints4[i] == vals], eq))
                if strings is not None:
                    found.append((_nonzero(pc.is_in(flat, value_set=strings)), eq))
            else:
                found.append((self._eq_rows(path, col), eq))
        suffix = self._suffix.get(path)
        if suffix:
            found.append(self._suffix_rows(path, col))
        for version in (4, 6):
            iv = self._cidr.get((path, version))
            if iv is None or not iv.entries:
                continue
            if iv.dirty:
                iv.build()
            if version == 4:
                pos, vals = col.ipv4()
                sel = self._ip4_filter(path)[vals >> 8]
                pos, vals = pos[sel], vals[sel]
            else:
                pos, vals = col.ipv6_upper()
            seg = np.searchsorted(iv.starts, vals, side="right") - 1
            ok = seg >= 0
            ok[ok] = iv.nonempty[seg[ok]]
            found.append((pos[ok], _ByRow({str(p): iv.keys[s] for p, s in
                                               zip(pos[ok].tolist(), seg[ok].tolist(),
                                                   strict=True)})))
        rx = self._regex.get(path)
        if rx is not None and rx.entries:
            found.append(self._regex_rows(rx, col))
        return self._gather(path, col_name, col, found)

    def _gather(self, path: str, col_name: str, col: _Column,
                found: list[tuple[Any, Any]]) -> list[Candidate]:
        """Candidate objects for the few positions that hit: the only per-value Python work."""
        out: list[Candidate] = []
        for pos, table in found:
            if not len(pos):
                continue
            pos = np.asarray(pos, dtype=np.int64)
            values = col.flat.take(pa.array(pos)).to_pylist()
            rows = col.parents[pos].tolist() if col.parents is not None else pos.tolist()
            by_pos = isinstance(table, _ByRow)  # keyed by position, else by value
            for p, row, v in zip(pos.tolist(), rows, values, strict=True):
                keys = table.get(str(p)) if by_pos else table.get(_norm(path, v))
                for key in keys or ():
                    comp = self.indicators.get(key >> _SHIFT)
                    if comp is not None:
                        out.append(Candidate(row, comp, comp.atoms[key & _MASK], col_name, v,
                                             col.is_string))
        return out

    def _eq_rows(self, path: str, col: _Column) -> Any:
        """Rows whose value is one of the path's equality values. A repetitive column (a
        dns query, an http host: ~50,000 distinct in a 250,000-row batch) looks up only its
        distinct values in the index's own dict, built once at compile time; Arrow's `is_in`
        would hash all 200,000 domains of the set again on every batch (measured 16 ms
        against 30 ms per batch at 1M indicators). A near-unique column keeps `is_in`."""
        eq = self._eq[path]
        if col._enc is not None or (len(col.flat) >= 4096 and (
                path in self._suffix or col._repetitive())):
            dictionary, indices = col.encoded()
            if not len(dictionary):
                return np.zeros(0, np.int64)
            if len(dictionary) * 2 <= len(col.flat):
                hit = np.fromiter((v in eq for v in dictionary.to_pylist()), dtype=bool,
                                  count=len(dictionary))
                return np.flatnonzero(hit[indices] & (indices >= 0))
        arr = self._eq_arrays.get(path)
        if arr is None:
            arr = self._eq_arrays[path] = pa.array(list(eq), pa.string())
        return _nonzero(pc.is_in(col.flat, value_set=arr))

    def _eq_split(self, path: str) -> tuple[Any, pa.Array | None]:
        """An address path's equality values: canonical IPv4 as sorted integers, the rest as
        strings (IPv6, odd spellings) for `is_in`. Rebuilt only after the path changed."""
        cached = self._eq_ip.get(path)
        if cached is None:
            keys = pa.array(list(self._eq[path]), pa.string())
            pos, ints = ipv4_ints(keys)
            rest = np.ones(len(keys), dtype=bool)
            rest[pos] = False
            strings = keys.filter(pa.array(rest)) if rest.any() else None
            cached = self._eq_ip[path] = (np.unique(ints), strings)
        return cached

    def _ip4_filter(self, path: str) -> Any:
        """One bit per /24 holding any IPv4 equality value or CIDR of `path`: 16 MiB that turn
        away ~96 % of addresses at 600,000 indicator addresses before any binary search."""
        bm = self._ip4_bitmap.get(path)
        if bm is None:
            bm = np.zeros(1 << 24, dtype=bool)
            if path in self._eq:
                ints4, _ = self._eq_split(path)
                bm[ints4 >> 8] = True
            iv = self._cidr.get((path, 4))
            if iv is not None:
                for lo, hi in iv.entries.values():
                    bm[lo >> 8:(hi >> 8) + 1] = True
            self._ip4_bitmap[path] = bm
        return bm

    def _suffix_rows(self, path: str, col: _Column) -> tuple[Any, _ByRow]:
        """Rows whose domain ends in `.suffix`: per label count k, the last k labels (RE2, on
        the distinct values only) looked up in that count's suffix set."""
        by_len = self._suffix_arrays.get(path)
        if by_len is None:
            groups: dict[int, list[str]] = defaultdict(list)
            for sfx in self._suffix[path]:
                groups[sfx.count(".") + 1].append(sfx)
            by_len = self._suffix_arrays[path] = {k: pa.array(v, pa.string())
                                                  for k, v in groups.items()}
        dictionary, indices = col.encoded()
        hit = np.zeros(len(dictionary), dtype=bool)
        for k, arr in by_len.items():
            tail = pc.extract_regex(dictionary, rf"\.(?P<t>[^.]+(?:\.[^.]+){{{k - 1}}})$")
            t = pc.struct_field(tail, [0])
            hit[_nonzero(pc.fill_null(pc.is_in(t, value_set=arr), False))] = True
        table: _ByRow = _ByRow()
        if not hit.any():
            return np.zeros(0, np.int64), table
        suffix = self._suffix[path]
        keys_at: dict[int, list[int]] = {}
        hit_pos = np.flatnonzero(hit)
        for pos, v in zip(hit_pos.tolist(), dictionary.take(pa.array(hit_pos)).to_pylist(),
                          strict=True):
            labels = v.split(".")
            keys_at[pos] = [k for i in range(1, len(labels))
                            for k in suffix.get(".".join(labels[i:]), ())]
        rows = np.flatnonzero(hit[indices] & (indices >= 0))  # -1: a null value
        for r in rows.tolist():
            table[str(r)] = keys_at[int(indices[r])]
        return rows, table

    def _regex_rows(self, rx: _Regexes, col: _Column) -> tuple[Any, _ByRow]:
        """Hyperscan over the column, joined into one scan (`_Regexes`): over its distinct
        values when it repeats (or is encoded already), else over the rows themselves, as
        the scan costs less than encoding near-unique URLs (~60 ms per 300,000)."""
        table: _ByRow = _ByRow()
        if col._enc is None and not col._repetitive():
            keys_at = rx.scan_values(col.flat)
            for r in sorted(keys_at):
                table[str(r)] = keys_at[r]
            return np.fromiter(sorted(keys_at), dtype=np.int64, count=len(keys_at)), table
        dictionary, indices = col.encoded()
        keys_at = rx.scan_values(dictionary)
        if not keys_at:
            return np.zeros(0, np.int64), table
        rows = np.flatnonzero(np.isin(indices, np.fromiter(keys_at, dtype=np.int64)))
        for r in rows.tolist():
            table[str(r)] = keys_at[int(indices[r])]
        return rows, table

    # ---- the atoms as relations (for plans that run elsewhere: the retro-hunt) ------------

    def equality_columns(self) -> Iterator[tuple[str, list[str], np.ndarray, np.ndarray]]:
        """Per path, the `=` / `IN` atoms as columns: (path, canonical values, slots, atom
        numbers), a value repeated once per atom it holds. Columns, not a row per atom: the
        retro-hunt's atom tables at a million indicators spent ~4 s building rows."""
        for path, table in self._eq.items():
            values: list[str] = []
            keys: list[int] = []
            add_value, add_keys = values.append, keys.extend
            for value, ks in table.items():
                if len(ks) == 1:
                    add_value(value)
                else:
                    values.extend([value] * len(ks))
                add_keys(ks)
            k = np.fromiter(keys, np.int64, len(keys))
            yield path, values, k >> _SHIFT, k & _MASK

    def suffix_atoms(self) -> Iterator[tuple[str, str, int, int]]:
        """(path, canonical suffix without its leading dot, slot, atom number) of each
        `LIKE '%.suffix'`."""
        for path, table in self._suffix.items():
            for suffix, keys in table.items():
                for key in keys:
                    yield path, suffix, key >> _SHIFT, key & _MASK

    def cidr_atoms(self, version: int = 4) -> Iterator[tuple[str, int, int, int, int]]:
        """(path, first, last address as integers, slot, atom number) of each `ISSUBSET` of
        that IP version (IPv6 by its upper 64 bits)."""
        for (path, v), iv in self._cidr.items():
            if v == version:
                for key, (lo, hi) in iv.entries.items():
                    yield path, lo, hi, key >> _SHIFT, key & _MASK

    def regex_atoms(self) -> Iterator[tuple[str, str, int, int]]:
        """(path, regular expression, slot, atom number) of each `MATCHES` and other LIKE."""
        for path, rx in self._regex.items():
            for key, expr in rx.entries.items():
                yield path, expr, key >> _SHIFT, key & _MASK

    def candidate(self, slot: int, atom: int, row: int, column: str, value: Any,
                  is_string: bool = True) -> Candidate | None:
        """The candidate for an atom named by (slot, atom number), None when its indicator
        has left the index since."""
        comp = self.indicators.get(slot)
        if comp is None:
            return None
        return Candidate(row, comp, comp.atoms[atom], column, value, is_string)

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
