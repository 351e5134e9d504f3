"""The one observation shape every reader yields: an Arrow batch whose columns are STIX paths.

A column is named by the STIX object path a pattern would use (`network-traffic:dst_ref.value`,
`domain-name:value`, `file:hashes.'SHA-256'`); list-valued paths end in `[*]` and hold Arrow
lists. Two columns are always there: `_ts` (int64 microseconds since the epoch) and `_line`
(the physical line in the source file, 1-based). Matching runs over whole columns; only the few
candidate rows are turned into STIX observed-data (`Observations.observed_data`) for exact
evaluation.
"""

from __future__ import annotations

import gzip
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.errors import ShieldwallError
from shieldwall.stix import bounded_json
from shieldwall.stix import values as canon
from shieldwall.stix.timestamps import format_ts

TS = "_ts"
LINE = "_line"

# Columns holding addresses, whatever pattern path names an address (`ipv4-addr:value`).
IP_COLUMNS = (
    "network-traffic:src_ref.value",
    "network-traffic:dst_ref.value",
    "domain-name:resolves_to_refs[*].value",
    "ipv4-addr:value",
    "ipv6-addr:value",
)
EMAIL_COLUMNS = (
    "email-message:from_ref.value",
    "email-message:sender_ref.value",
    "email-message:to_refs[*].value",
    "email-message:cc_refs[*].value",
    "email-addr:value",
)
# Address-typed columns can hold a host name (a Zeek DNS answer that is a CNAME, a mapped
# JSON field): such a value becomes a `domain-name` object (`_ref_type`), so domain indicators
# are looked up in these columns too, on their non-address values only (index.HOST_PATHS).
HOST_COLUMNS = (
    "network-traffic:src_ref.value",
    "network-traffic:dst_ref.value",
    "domain-name:resolves_to_refs[*].value",
)
# A pattern path -> the columns that can hold its value.
ALIASES: dict[str, tuple[str, ...]] = {
    "ipv4-addr:value": IP_COLUMNS,
    "ipv6-addr:value": IP_COLUMNS,
    "email-addr:value": EMAIL_COLUMNS,
    "domain-name:value": ("domain-name:value", *HOST_COLUMNS),
}


class ReaderError(ShieldwallError):
    """A file that cannot be read as telemetry; the message names the file and what to do."""


@dataclass
class BadLine:
    file: str
    line: int
    reason: str


@dataclass
class ReadStats:
    """Per-run counters; corrupt lines are skipped and kept here with file and line."""

    files: int = 0
    events: int = 0
    bad: list[BadLine] = field(default_factory=list)
    bad_count: int = 0

    def skip(self, file: str, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < 1000:  # keep the first thousand for the report
            self.bad.append(BadLine(file, line, reason[:200]))


@dataclass
class Observations:
    """One batch of events from one file, all of one format (`kind`, e.g. `zeek.conn`)."""

    table: pa.Table
    source: str
    kind: str
    # Readers of STIX input keep the original observed-data objects, one per row.
    originals: list[dict[str, Any]] | None = None
    # Row -> the row of the line it belongs to, when a line holds several values of one
    # single-valued path (`elements.spread`: its further values follow in rows of their
    # own); None when every row is a line of its own.
    event: Any = None
    _rows: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def events(self) -> int:
        """Events (log lines) in the batch: its rows less those holding further values."""
        if self.event is None:
            return self.table.num_rows
        return int(np.count_nonzero(self.event == np.arange(len(self.event))))

    def event_of(self, row: int) -> int:
        """The row that stands for `row`'s line (itself unless it holds a further value)."""
        return row if self.event is None else int(self.event[row])

    def prefetch(self, rows: list[int]) -> None:
        """Convert the rows that will be needed in one Arrow call (a hunt's candidate rows):
        ~3 us a row instead of ~25 us for a slice per row."""
        rows = [r for r in rows if r not in self._rows]
        if rows:
            taken = self.table.take(pa.array(rows, pa.int64())).to_pylist()
            self._rows.update(zip(rows, taken, strict=True))

    def row(self, i: int) -> dict[str, Any]:
        """The non-null values of row `i`, by column name."""
        full = self._rows.get(i)
        if full is None:
            full = self.table.slice(i, 1).to_pylist()[0]
        return {name: v for name, v in full.items()
                if (":" in name or name in (TS, LINE)) and v is not None and v != []}

    def observed_data(self, i: int) -> dict[str, Any]:
        """Row `i` as a STIX 2.1 observed-data object with embedded `objects` (for matching)."""
        if self.originals is not None:
            return self.originals[i]
        row = self.row(i)
        ts = format_ts(int(row.pop(TS, 0)))
        row.pop(LINE, None)
        return {
            "type": "observed-data",
            "spec_version": "2.1",
            "id": "observed-data--00000000-0000-4000-8000-000000000000",
            "created": ts,
            "modified": ts,
            "first_observed": ts,
            "last_observed": ts,
            "number_observed": 1,
            "objects": objects_from_paths(row),
        }


# ---- canonical values --------------------------------------------------------------------
#
# Readers write hashes, domains, addresses, URLs and email addresses in the canonical form of
# `shieldwall.stix.values`, the form indicators are compiled to, so the index compares them as
# they are and the hot path pays nothing. Per column, not per value: a column that is already
# canonical is recognised from its data buffer and kept (IPv4 addresses: one `max` over the
# bytes says no letter, colon or non-ASCII byte is there, ~0.1 ms per million addresses, and
# one `ends_with` finds no trailing dot, ~3 ms); only the rows that need it
# (IPv6, a trailing dot, a non-ASCII name, a URL or email host not in lower case) are rewritten,
# each distinct value once, in Python.

_UPPER_A, _COLON = 65, 58
_HOST_ENDS = np.frombuffer(b"/:?#@", dtype=np.uint8)
# The part of a URL before its path: flagged when it holds an upper-case letter, an IPv6
# literal, or a host ending in the root's dot.
_URL_HEAD_ODD = r"^[^/?#]*(?://[^/?#]*)?"
_URL_HEAD_ODD_TEST = r"[A-Z\[]|\.(?::[0-9]*)?$"
_EMAIL_DOMAIN_ODD = r"@[^@]*(?:[A-Z][^@]*|\.)$"


def _dotted_or_bracketed(arr: pa.Array, data: Any) -> bool:
    """Whether a URL or email column, already in lower case, may still hold a host ending in
    the root's dot or an IPv6 literal: a few scans of the bytes (~10 ms per million URLs; the
    regular expressions that find the rows cost ~0.45 s)."""
    if bool((data == 91).any()):  # `[`
        return True
    after = data[np.flatnonzero(data[:-1] == 46) + 1]  # the byte after each `.`
    return (bool(np.isin(after, _HOST_ENDS).any())
            or bool(pc.any(pc.ends_with(arr, ".")).as_py()))


def canonical_column(path: str, col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`col` (the values of STIX path `path`, strings or lists of strings) in canonical form."""
    kind = canon.kind_of(path)
    if kind is None:
        return col
    if isinstance(col, pa.ChunkedArray):
        return pa.chunked_array([_canonical_array(kind, c) for c in col.chunks], col.type)
    return _canonical_array(kind, col)


def _canonical_array(kind: str, arr: pa.Array) -> pa.Array:
    if pa.types.is_list(arr.type):
        values = _canonical_array(kind, arr.values)
        return pa.ListArray.from_arrays(arr.offsets, values, mask=arr.is_null())
    if not pa.types.is_string(arr.type) or len(arr) == 0:
        return arr
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=len(arr) + 1,
                            offset=arr.offset * 4)
    data = (np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]]
            if data_buf is not None else np.zeros(0, np.uint8))
    if not len(data):
        return arr
    top = int(data.max())
    lowered = pc.ascii_lower(arr) if top >= _UPPER_A else arr  # a copy and a compare: ~1 ms
    upper = lowered is not arr and not lowered.equals(arr)
    if kind == canon.HASH:
        if not upper:
            return arr
        # only hexadecimal digests fold; SSDEEP and the like are case-sensitive
        return pc.if_else(pc.match_substring_regex(arr, "^[0-9A-Fa-f]+$"), lowered, arr)
    if upper and kind in (canon.DOMAIN, canon.HOST):
        arr = lowered  # same offsets: the byte positions below still hold
    odd: list[Any] = []  # byte positions that make a row need Python
    if top >= _COLON and kind in (canon.IP, canon.HOST):
        colon = np.flatnonzero(data == _COLON)
        if len(colon):
            odd.append(colon)
    if top >= 128:
        odd.append(np.flatnonzero(data >= 128))
    pos = [np.searchsorted(offsets, np.concatenate(odd) + offsets[0], side="right") - 1] if odd \
        else []
    if kind in (canon.DOMAIN, canon.HOST):
        dots = pc.ends_with(arr, ".")
        if pc.any(dots).as_py():
            pos.append(np.flatnonzero(np.asarray(pc.fill_null(dots, False).to_numpy(
                zero_copy_only=False), dtype=bool)))
    elif kind in (canon.URL, canon.EMAIL) and (upper or top >= 128 or _dotted_or_bracketed(
            arr, data)):
        if kind == canon.URL:
            head = pc.struct_field(pc.extract_regex(arr, f"(?P<h>{_URL_HEAD_ODD})"), [0])
            flagged = pc.match_substring_regex(head, _URL_HEAD_ODD_TEST)
        else:
            flagged = pc.match_substring_regex(arr, _EMAIL_DOMAIN_ODD)
        pos.append(np.flatnonzero(np.asarray(pc.fill_null(flagged, False).to_numpy(
            zero_copy_only=False), dtype=bool)))
    rows = np.unique(np.concatenate(pos)) if pos else np.zeros(0, np.int64)
    if not len(rows):
        return arr
    form = canon.CANONICAL[kind]
    taken = arr.take(pa.array(rows, pa.int64())).to_pylist()
    done: dict[str, str] = {}
    new = [None if v is None else done.get(v) or done.setdefault(v, form(v)) for v in taken]
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(arr, pa.array(mask), pa.array(new, pa.string()))


_SEGMENT = re.compile(r"'[^']*'|[^.]+")


def split_path(rest: str) -> list[str]:
    """`hashes.'SHA-256'` -> ["hashes", "SHA-256"]; `a_refs[*].value` -> ["a_refs[*]", "value"]."""
    return [s[1:-1] if s.startswith("'") else s for s in _SEGMENT.findall(rest)]


# What `ipaddress.IPv4Address` accepts: four decimal octets 0-255 without leading zeros.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _ref_type(name: str, value: Any) -> str:
    if isinstance(value, str):
        # The regular expression answers IPv4 in ~0.5 us where `ipaddress` takes ~20 us;
        # only a value with a colon can be IPv6.
        if _IPV4.fullmatch(value):
            return "ipv4-addr"
        if ":" in value:
            try:
                return "ipv6-addr" if ipaddress.ip_address(value).version == 6 else "ipv4-addr"
            except ValueError:
                pass
        if "@" in value or name in ("from_ref", "sender_ref", "to_refs", "cc_refs"):
            return "email-addr"
    return "domain-name"


def objects_from_paths(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Build STIX cyber-observable objects from `{path: value}`; refs become separate objects."""
    objects: dict[str, dict[str, Any]] = {}
    roots: dict[str, str] = {}

    def new(obj: dict[str, Any]) -> str:
        key = str(len(objects))
        objects[key] = obj
        return key

    ref_objs: dict[tuple[str, str], str] = {}
    for path, value in values.items():
        root, _, rest = path.partition(":")
        if root not in roots:
            roots[root] = new({"type": root})
        obj = objects[roots[root]]
        segs = split_path(rest)
        first = segs[0]
        if first.endswith("_refs[*]") and len(segs) == 2:
            name = first[:-3]
            keys = []
            for v in value if isinstance(value, list) else [value]:
                keys.append(new({"type": _ref_type(name, v), segs[1]: v}))
            obj.setdefault(name, []).extend(keys)
        elif first.endswith("_ref") and len(segs) == 2:
            key = ref_objs.get((root, first))
            if key is None:
                key = ref_objs[(root, first)] = new({"type": _ref_type(first, value)})
                obj[first] = key
            objects[key][segs[1]] = value
        else:
            target = obj
            for seg in segs[:-1]:
                target = target.setdefault(seg, {})
            last = segs[-1]
            if last.endswith("[*]"):
                target[last[:-3]] = value if isinstance(value, list) else [value]
            else:
                target[last] = value
    return objects


# ---- opening files ---------------------------------------------------------------------

_SNIFF = 65536


def open_text(path: Path, buffering: int = -1) -> IO[bytes]:
    """Open a log, transparently gunzipping; refuse binary files with a clear message.
    `buffering`: bytes read at once from a plain file (a megabyte halves the cost of
    iterating short lines against the default 8 KB)."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    fh: IO[bytes] = gzip.open(path, "rb") if magic == b"\x1f\x8b" else \
        open(path, "rb", buffering=buffering)  # noqa: SIM115
    head = fh.peek(_SNIFF)[:_SNIFF] if hasattr(fh, "peek") else b""
    if _is_binary(head):
        fh.close()
        raise ReaderError(
            f"{path}: binary file, not a log (give Zeek TSV/JSON, Suricata EVE JSON, "
            "JSON lines or a STIX bundle; gzip is accepted)"
        )
    return fh


def json_records(path: Path, stats: ReadStats) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each JSON-object line; blank lines are passed over and
    corrupt ones counted in `stats` with their file and line, never fatal."""
    with open_text(path) as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = bounded_json.loads(raw)  # a line nested too deep is a bad line
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except (orjson.JSONDecodeError, ValueError) as exc:
                stats.skip(str(path), n, f"bad JSON: {exc}")
                continue
            yield n, rec


def head_bytes(path: Path, n: int = _SNIFF) -> bytes:
    with open_text(path) as fh:
        return fh.read(n)


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as raw:
        return raw.read(2) == b"\x1f\x8b"


def _is_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed block is still text.
        return exc.start < len(head) - 4
    return False


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Files as given, directories walked in name order (hidden files skipped)."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    yield f
        elif p.exists():
            yield p
        else:
            raise ReaderError(f"{p}: no such file or directory")
