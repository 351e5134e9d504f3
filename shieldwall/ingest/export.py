"""Export a STIX 2.1 bundle of what the store holds, filtered by type, time and TLP ceiling.

The bundle is written by concatenating the stored canonical JSON texts: nothing is
parsed or re-serialised, so an export streams at disk speed in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Access, Query, Store


def export_bundle(
    store: Store,
    out: TextIO,
    *,
    types: Sequence[str] | None = None,
    modified_from_us: int | None = None,
    modified_to_us: int | None = None,
    tlp_max: TLP = TLP.AMBER_STRICT,
    all_versions: bool = False,
    access: Access | None = None,
) -> int:
    """Write one bundle; returns how many objects it holds. RED is never exported unless asked."""
    q = Query(
        types=types or None,
        versions="all" if all_versions else "last",
        tlp_max=tlp_max,
        modified_from_us=modified_from_us,
        modified_to_us=modified_to_us,
        access=access,
    )
    out.write(f'{{"type":"bundle","id":"{new_id("bundle")}","objects":[')
    n = 0
    for row in store.iter_query(q):
        if n:
            out.write(",")
        out.write("\n")
        out.write(row.json)
        n += 1
    out.write("\n]}\n")
    return n
