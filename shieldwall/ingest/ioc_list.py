"""CSV and free-text IOC lists: the everyday currency between CERTs, turned into STIX indicators.

Every value becomes one indicator whose id is derived from the producer, the kind and the
normalised value, and whose `created`/`modified`/`valid_from` come from the list itself (a
first-seen column, else `opts.extra["timestamp"]`, else the file's modification time). So the same
list imported twice yields duplicates, not new objects, and a newer copy of a feed yields newer
versions of the indicators it repeats. Refanging and typing live in `defang`.

TLP: IOC lists carry no markings of their own, so when `opts.tlp` is given every indicator is
marked with it; when it is None the indicators stay unmarked and the store resolves them to the
node's default (AMBER unless configured), so there is one place that default lives.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shieldwall.ingest import defang as d
from shieldwall.ingest.base import (
    Format,
    ImportError_,
    Item,
    ReadOptions,
    Rejected,
    register_format,
)
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import tlp_marking_definition, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, parse_ts

# Kind -> STIX object path and comparison operator.
_PATHS: dict[str, tuple[str, str]] = {
    d.IPV4: ("ipv4-addr:value", "="),
    d.IPV6: ("ipv6-addr:value", "="),
    d.IPV4_CIDR: ("ipv4-addr:value", "ISSUBSET"),
    d.IPV6_CIDR: ("ipv6-addr:value", "ISSUBSET"),
    d.DOMAIN: ("domain-name:value", "="),
    d.URL: ("url:value", "="),
    d.EMAIL: ("email-addr:value", "="),
    d.MD5: ("file:hashes.MD5", "="),
    d.SHA1: ("file:hashes.'SHA-1'", "="),
    d.SHA256: ("file:hashes.'SHA-256'", "="),
    d.FILENAME: ("file:name", "="),
}

# Column names seen in MISP CSV exports, abuse.ch feeds and home-made spreadsheets.
_VALUE_COLUMNS = (
    "value", "indicator", "ioc", "observable", "ioc_value", "indicator_value", "url", "domain",
    "hostname", "host", "fqdn", "ip", "ip_address", "ipaddress", "dst_ip", "src_ip", "ip_dst",
    "address", "email", "sha256", "sha256_hash", "sha1", "sha1_hash", "md5", "md5_hash", "hash",
    "filename", "file_name",
)
_TYPE_COLUMNS = ("type", "ioc_type", "indicator_type", "attribute_type", "kind")
_COMMENT_COLUMNS = ("comment", "description", "threat", "malware", "malware_printable", "tags")
_FIRST_SEEN_COLUMNS = (
    "first_seen", "first_seen_utc", "firstseen", "dateadded", "date_added", "date", "timestamp",
    "created",
)
_KNOWN_COLUMNS = frozenset(
    _VALUE_COLUMNS + _TYPE_COLUMNS + _COMMENT_COLUMNS + _FIRST_SEEN_COLUMNS
    + ("uuid", "event_id", "category", "to_ids", "id", "status", "url_status", "last_online")
)

# What a type column may say (MISP attribute types and plain words) -> the kinds it allows.
_IP = frozenset({d.IPV4, d.IPV6, d.IPV4_CIDR, d.IPV6_CIDR})
_HASHES = frozenset({d.MD5, d.SHA1, d.SHA256})
_TYPE_WORDS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("ip", "ip-dst", "ip-src", "ipv4", "ipv6", "ip_address", "cidr", "ipv4-addr",
                     "ipv6-addr", "ip-addr"), _IP),
    **dict.fromkeys(("domain", "hostname", "fqdn", "domain-name", "host"), frozenset({d.DOMAIN})),
    **dict.fromkeys(("url", "link", "uri"), frozenset({d.URL})),
    **dict.fromkeys(("email", "email-src", "email-dst", "target-email", "email-addr",
                     "whois-registrant-email"), frozenset({d.EMAIL})),
    "md5": frozenset({d.MD5}), "sha1": frozenset({d.SHA1}), "sha-1": frozenset({d.SHA1}),
    "sha256": frozenset({d.SHA256}), "sha-256": frozenset({d.SHA256}),
    "hash": _HASHES, "filehash": _HASHES, "file_hash": _HASHES,
    **dict.fromkeys(("filename", "file", "file_name", "file-name"), frozenset({d.FILENAME})),
}

# In prose only payload-like extensions count as file names: `Node.js` and `index.html` in a
# threat report are words, not indicators.
_PROSE_FILE_EXTENSIONS = d.words(
    "exe dll scr sys lnk hta ps1 vbs vbe bat cmd jar msi iso img docm xlsm xlam pptm doc docx "
    "xls xlsx pdf zip rar 7z apk elf bin one chm wsf jse"
)
_LEAD = "([{<\"'`“‘«"
_TRAIL = ")]}>\"'`”’»,;:.!?"


def escape_pattern_value(value: str) -> str:
    """STIX patterning string literal body: only `\\` and `'` need escaping (spec 9.2)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern_for(kind: str, value: str) -> str:
    path, op = _PATHS[kind]
    return f"[{path} {op} '{escape_pattern_value(value)}']"


def indicator_id(producer_id: str, kind: str, value: str) -> str:
    return deterministic_id("indicator", f"{producer_id}|{kind}|{value}")


def make_indicator(
    kind: str,
    value: str,
    opts: ReadOptions,
    timestamp: str,
    *,
    description: str | None = None,
    pattern: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """One STIX 2.1 indicator for a typed, normalised value."""
    producer_id = opts.producer["id"]
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(producer_id, kind, key or value),
        "created": timestamp,
        "modified": timestamp,
        "created_by_ref": producer_id,
        "name": value,
        "pattern": pattern or pattern_for(kind, value),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": timestamp,
    }
    if description:
        obj["description"] = description
    if opts.tlp is not None:
        obj["object_marking_refs"] = [tlp_marking_ref(opts.tlp)]
    return obj


def _preamble(opts: ReadOptions) -> Iterator[Item]:
    yield opts.producer
    if opts.tlp is not None:
        yield tlp_marking_definition(opts.tlp)


def _default_timestamp(path: Path, opts: ReadOptions) -> str:
    given = opts.extra.get("timestamp")
    if given:
        parse_ts(given)
        return given
    return format_ts(int(path.stat().st_mtime) * 1_000_000)


_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y%m%d", "%d/%m/%Y")


def _parse_first_seen(text: str) -> str | None:
    """`2024-03-01 12:00:00`, ISO 8601 (`...Z`, offsets), `20240301`, or epoch seconds (MISP)."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit() and len(text) >= 9:
        return format_ts(int(text) * 1_000_000)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        dt = None
        for fmt in _DATE_FORMATS:
            try:
                dt = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    micros = int(dt.timestamp()) * 1_000_000
    return format_ts(micros) if micros >= 0 else None


def _open_text(path: Path) -> io.TextIOWrapper:
    with path.open("rb") as fh:
        head = fh.read(8192)
    if b"\x00" in head:
        raise ImportError_(f"{path}: binary data, not an IOC list")
    return path.open(encoding="utf-8-sig", errors="replace", newline="")


# ---------------------------------------------------------------------------------- free text


def _tokens(line: str) -> Iterator[str]:
    for raw in line.split():
        tok = raw.lstrip(_LEAD).rstrip(_TRAIL)
        # `(hxxp://x[.]com)` keeps its inner brackets; only unbalanced outer ones go.
        if tok.endswith("]") and tok.count("[") < tok.count("]"):
            tok = tok[:-1]
        if tok:
            yield tok


def extract(line: str) -> list[tuple[str, str]]:
    """The IOCs in one line of prose, as (kind, value), in order of appearance."""
    found = []
    for tok in _tokens(line):
        typed = d.classify(tok)
        if typed is None:
            continue
        kind, value = typed
        if kind == d.FILENAME and value.rsplit(".", 1)[-1].lower() not in _PROSE_FILE_EXTENSIONS:
            continue
        found.append(typed)
    return found


def read_text(path: Path, opts: ReadOptions) -> Iterator[Item]:
    """One IOC per line, or prose with IOCs in it.

    A line that is a single token and no IOC is rejected with its line number (a typo in a
    list should be seen); a prose line with no IOC is just prose. `#` lines are comments.
    """
    ts = _default_timestamp(path, opts)
    seen: set[str] = set()
    with _open_text(path) as fh:
        yield from _preamble(opts)
        for lineno, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith(("#", "//")):
                continue
            iocs = extract(text)
            if not iocs:
                if len(text.split()) == 1:
                    yield Rejected(f"line {lineno}", f"not a recognised IOC: {text[:80]!r}")
                continue
            for kind, value in iocs:
                obj = make_indicator(kind, value, opts, ts)
                if obj["id"] not in seen:
                    seen.add(obj["id"])
                    yield obj


# ---------------------------------------------------------------------------------- CSV


def _norm_col(name: str) -> str:
    return re.sub(r"[\s.]+", "_", name.strip().strip("#").strip().lower())


def _pick(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


class _Columns:
    def __init__(self, header: list[str] | None):
        self.header = header
        h = header or []
        self.value = _pick(h, _VALUE_COLUMNS)
        self.type = _pick(h, _TYPE_COLUMNS)
        self.comment = _pick(h, _COMMENT_COLUMNS)
        self.first_seen = _pick(h, _FIRST_SEEN_COLUMNS)


def _looks_like_header(cells: list[str]) -> bool:
    if any(d.classify(c) for c in cells):
        return False
    return any(_norm_col(c) in _KNOWN_COLUMNS for c in cells)


def _dialect(sample: list[str]) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff("\n".join(sample[:20]), delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _cell(row: list[str], idx: int | None) -> str:
    return row[idx].strip() if idx is not None and idx < len(row) else ""


def _typed_from_row(row: list[str], cols: _Columns) -> tuple[str, str] | str:
    """(kind, value), or the reason the row gives no indicator."""
    if cols.value is None:
        for cell in row:
            typed = d.classify(cell)
            if typed:
                return typed
        return f"no IOC in row: {','.join(row)[:80]!r}"
    raw = _cell(row, cols.value)
    if not raw:
        return "empty value"
    type_word = _cell(row, cols.type).lower()
    if type_word and "|" in type_word:
        return (f"composite MISP type {type_word!r} is not an IOC-list type; "
                "import the MISP event (JSON) to keep it")
    allowed = _TYPE_WORDS.get(type_word) if type_word else None
    if type_word and allowed is None and cols.header and "category" in cols.header:
        return (f"MISP type {type_word!r} is not an IOC-list type; "
                "import the MISP event (JSON) to keep it")
    if allowed is not None and d.FILENAME in allowed:
        name = raw.strip()
        if name and not any(c in name for c in "\\/\r\n"):
            return d.FILENAME, name
        return f"not a file name: {raw[:80]!r}"
    typed = d.classify(raw)
    if typed is None:
        return f"not a recognised IOC: {raw[:80]!r}"
    if allowed is not None and typed[0] not in allowed:
        return f"type column says {type_word!r} but {raw[:80]!r} is a {typed[0]}"
    return typed


def read_csv(path: Path, opts: ReadOptions) -> Iterator[Item]:
    """A CSV (or `;`/tab/`|`) list with or without a header.

    The header may be the first row, or the last `#` comment line before the data (abuse.ch
    feeds). Without a header, the first cell of each row that is an IOC is taken.
    """
    default_ts = _default_timestamp(path, opts)
    seen: set[str] = set()
    with _open_text(path) as fh:
        yield from _preamble(opts)
        lines = enumerate(fh, 1)
        buffered: list[tuple[int, str]] = []
        last_comment: str | None = None
        for lineno, line in lines:
            if not line.strip():
                continue
            if line.lstrip().startswith("#"):
                if not buffered:
                    last_comment = line.lstrip()[1:]
                continue
            buffered.append((lineno, line))
            if len(buffered) >= 20:
                break
        if not buffered:
            return
        dialect = _dialect([text for _, text in buffered])

        def parse(text: str) -> list[str]:
            return next(csv.reader([text], dialect), [])

        first = parse(buffered[0][1])
        header: list[str] | None = None
        if _looks_like_header(first):
            header = [_norm_col(c) for c in first]
            buffered = buffered[1:]
        elif last_comment is not None:
            candidate = parse(last_comment.strip())
            if len(candidate) == len(first) and _looks_like_header(candidate):
                header = [_norm_col(c) for c in candidate]
        cols = _Columns(header)

        def rows() -> Iterator[tuple[int, str]]:
            yield from buffered
            for lineno, line in lines:
                if line.strip() and not line.lstrip().startswith("#"):
                    yield lineno, line

        for lineno, line in rows():
            row = parse(line)
            typed = _typed_from_row(row, cols)
            if isinstance(typed, str):
                yield Rejected(f"line {lineno}", typed)
                continue
            kind, value = typed
            first_seen = _parse_first_seen(_cell(row, cols.first_seen))
            obj = make_indicator(kind, value, opts, first_seen or default_ts,
                                 description=_cell(row, cols.comment) or None)
            if obj["id"] not in seen:
                seen.add(obj["id"])
                yield obj


# ---------------------------------------------------------------------------------- sniffing


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniffing window is still text.
        if exc.start < len(head) - 4:
            return False
    return True


def _looks_like_json(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def sniff_csv(head: bytes, path: Path) -> bool:
    if not _is_text(head) or _looks_like_json(head):
        return False
    if path.suffix.lower() in (".csv", ".tsv"):
        return True
    text = head.decode("utf-8", errors="ignore")
    data = [ln for ln in text.splitlines()[:-1] if ln.strip() and not ln.lstrip().startswith("#")]
    data = data[:5]
    if len(data) < 2:
        return False
    for sep in (",", ";", "\t"):
        counts = {ln.count(sep) for ln in data}
        if len(counts) == 1 and counts.pop() >= 1:
            return True
    return False


def sniff_text(head: bytes, path: Path) -> bool:
    return _is_text(head) and not _looks_like_json(head)


register_format(Format(
    name="csv",
    description="CSV IOC list (MISP CSV export, abuse.ch-style feeds, spreadsheets)",
    read=read_csv,
    sniff=sniff_csv,
))
register_format(Format(
    name="text",
    description="free-text IOC list or threat-report prose; defanged values accepted",
    read=read_text,
    sniff=sniff_text,
))
