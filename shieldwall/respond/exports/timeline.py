"""The case's timeline for the tools analysts use: Timesketch JSONL and CSV.

Timesketch's JSONL import needs `message`, `datetime` (ISO 8601) and `timestamp_desc` on
every line (its docs, "Import JSONL"); `timestamp` (microseconds since the epoch) is added
so no parser has to read the date. Other keys become the event's attributes: the item's
TLP, kind, source, time fidelity and STIX id, so an analyst can filter on `tlp` in
Timesketch. The CSV has the same columns (Timesketch imports it too); a cell that a
spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) is
written with a leading `'`, as OWASP advises for CSV injection: a case holds text from
attackers' mails and logs.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from shieldwall.respond.cases import Case
from shieldwall.respond.exports.view import Entry, timeline
from shieldwall.stix.timestamps import parse_ts

COLUMNS = ("datetime", "timestamp_desc", "message", "timestamp", "tlp", "kind", "source",
           "fidelity", "item_id")


def _row(entry: Entry) -> dict[str, Any]:
    us = parse_ts(entry.time)
    row: dict[str, Any] = {
        "message": entry.message,
        "datetime": datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(),
        "timestamp_desc": entry.desc,
        "timestamp": us,
        "tlp": entry.tlp.label,
        "kind": entry.kind,
        "item_id": entry.item_id,
    }
    if entry.source:
        row["source"] = entry.source
    if entry.fidelity:
        row["fidelity"] = entry.fidelity
    for key, value in entry.details.items():
        if value not in (None, "", []):
            row.setdefault(key, value)
    return row


def timesketch(case: Case, out: TextIO) -> int:
    """One JSON object a line; returns the number of lines."""
    n = 0
    for entry in timeline(case):
        out.write(orjson.dumps(_row(entry)).decode() + "\n")
        n += 1
    return n


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(case: Case, out: TextIO) -> int:
    """A header and one row an entry; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for entry in timeline(case):
        row = _row(entry)
        writer.writerow([_cell(row.get(c)) for c in COLUMNS])
        n += 1
    return n
