"""Exports of a case people use: the report (printable HTML, Markdown), the timeline
(Timesketch JSONL, CSV), the case as a STIX 2.1 bundle, and evidence custody as CASE/UCO
JSON-LD.

Every export is made from the same stored objects, read once through the reader's
`Access` (`respond.cases.load_case`): an item the reader may not see (its TLP and
audience) is absent from every format, with its link, its place on the timeline and its
custody events. Nothing here filters by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from shieldwall.respond.cases import Case, load_case
from shieldwall.respond.model import RespondError
from shieldwall.store import Access, Store

FORMATS = ("html", "md", "timesketch", "csv", "stix", "case-uco")
SUFFIXES = {"html": ".html", "md": ".md", "timesketch": ".jsonl", "csv": ".csv",
            "stix": ".json", "case-uco": ".jsonld"}


def export_case(store: Store, case_id: str, access: Access, fmt: str, out: TextIO, *,
                reader: str) -> int:
    """Write case `case_id` as `access` may see it, in `fmt`, to `out`; returns how many
    items (tasks, events, objects, custody records: what the format counts) it holds.
    `reader` names who it is made for, as the report states."""
    writer = _writers().get(fmt)
    if writer is None:
        raise RespondError(f"export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    case = load_case(store, case_id, access)
    if case.incident is None:
        raise RespondError(f"no case {case_id} that {reader} may read")
    return writer(store, case, access, out, reader)


def _writers() -> dict[str, Callable[[Store, Case, Access, TextIO, str], int]]:
    from shieldwall.respond.exports import bundle, case_uco, report, timeline

    return {
        "html": lambda s, c, a, o, r: report.html(c, o, reader=r),
        "md": lambda s, c, a, o, r: report.markdown(c, o, reader=r),
        "timesketch": lambda s, c, a, o, r: timeline.timesketch(c, o),
        "csv": lambda s, c, a, o, r: timeline.csv_rows(c, o),
        "stix": lambda s, c, a, o, r: bundle.stix_bundle(s, c, a, o),
        "case-uco": lambda s, c, a, o, r: case_uco.custody_graph(c, o),
    }
