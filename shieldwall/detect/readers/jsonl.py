"""JSON lines with a field-mapping file: any JSON log, mapped onto STIX paths.

The mapping file (JSON or TOML) names the timestamp field and, for each STIX path, the dotted
field that holds its value::

    {"timestamp": "event.time",
     "fields": {"network-traffic:src_ref.value": "source.ip",
                "network-traffic:dst_ref.value": "destination.ip",
                "domain-name:value": "dns.question.name"}}

Timestamps may be epoch seconds (int or float) or ISO 8601 / RFC 3339 text. Hashes, names,
addresses, URLs and email addresses are put in canonical form (`base.canonical_column`). A
field holding a list on a single-valued path (`"dns.answers": [...]` mapped to
`ipv4-addr:value`) has every element matched, each further one in a row of its own
(`elements`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from shieldwall.detect.readers.base import (
    LINE,
    TS,
    Observations,
    ReaderError,
    ReadStats,
    canonical_column,
)
from shieldwall.detect.readers.damage import Truncated, records
from shieldwall.detect.readers.elements import assemble, spread

CHUNK = 65536


def parse_time(text: str) -> int | None:
    """ISO 8601 (`2024-05-01T10:00:00.123456+0000`, `...Z`) -> microseconds; None if unreadable."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    elif len(t) > 5 and t[-5] in "+-" and t[-4:].isdigit() and ":" not in t[-5:]:
        t = t[:-2] + ":" + t[-2:]
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def load_mapping(path: Path) -> dict[str, Any]:
    """Read and check a mapping file; a wrong one raises ReaderError naming what to fix."""
    try:
        text = path.read_bytes()
        data = tomllib.loads(text.decode()) if path.suffix == ".toml" else orjson.loads(text)
    except (OSError, ValueError) as exc:
        raise ReaderError(f"{path}: cannot read the field mapping: {exc}") from None
    fields = data.get("fields") if isinstance(data, dict) else None
    if not isinstance(fields, dict) or not fields or not all(
        isinstance(k, str) and ":" in k and isinstance(v, str) for k, v in fields.items()
    ):
        raise ReaderError(f"{path}: the mapping needs a 'fields' table of "
                          "'stix-type:path' = 'dotted.field'")
    return data


def _dig(rec: Any, dotted: str) -> Any:
    if isinstance(rec, dict) and dotted in rec:
        return rec[dotted]
    for key in dotted.split("."):
        if not isinstance(rec, dict):
            return None
        rec = rec.get(key)
    return rec


def _ts(v: Any) -> int | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return int(v * 1_000_000)
    return parse_time(v) if isinstance(v, str) else None


def read_jsonl(path: Path, stats: ReadStats, mapping: dict[str, Any]) -> Iterator[Observations]:
    fields: dict[str, str] = mapping["fields"]
    ts_field = mapping.get("timestamp", "timestamp")
    rows: list[dict[str, Any]] = []
    lines: list[int] = []

    def flush() -> Observations:
        cols: dict[str, Any] = {
            TS: pa.array([_ts(_dig(r, ts_field)) for r in rows], pa.int64()),
            LINE: pa.array(lines, pa.int64()),
        }
        sources: dict[str, list[Any]] = {}
        for stix, src in fields.items():
            vals = [_dig(r, src) for r in rows]
            if "[*]" in stix or any(isinstance(v, list) for v in vals):
                arr = pa.array(
                    [None if v is None or v == [] else
                     [str(x) for x in (v if isinstance(v, list) else [v])] for v in vals],
                    pa.list_(pa.string()))
            elif all((isinstance(v, int) and not isinstance(v, bool)) or v is None for v in vals):
                arr = pa.array(vals, pa.int64())
            else:
                arr = pa.array([None if v is None else str(v) for v in vals], pa.string())
            sources[stix] = [canonical_column(stix, arr)]
        built, more = assemble(sources, len(rows))
        table, event = spread(pa.table(cols | built), more)
        return Observations(table, str(path), "jsonl", event=event)

    cut: list[Truncated] = []  # a stream cut short: what came before it counts
    for n, rec in records(path, stats, cut):
        rows.append(rec)
        lines.append(n)
        if len(rows) >= CHUNK:
            yield flush()
            rows, lines = [], []
    if rows:
        yield flush()
    if cut:
        raise cut[0]
