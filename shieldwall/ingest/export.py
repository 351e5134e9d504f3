"""Export a STIX 2.1 bundle of what the store holds, filtered by type, time and TLP ceiling.

The bundle is written by concatenating the stored canonical JSON texts, so an export
streams at disk speed in bounded memory. Only an object whose own standard TLP refs do not
say the level this node holds it at (an unmarked object held at the node's default, one
marked by a custom definition) is parsed: it leaves with FIRST's TLP 2.0 ref for that level
added (`stix.outbound`), and the bundle ends with the TLP 2.0 definitions it added refs to,
so the next node never reads an object at a wider audience than this one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP, tlp_marking_definition, tlp_marking_ref
from shieldwall.stix.outbound import held_text
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
    added: set[TLP] = set()
    written: set[str] = set()
    for row in store.iter_query(q):
        if n:
            out.write(",")
        out.write("\n")
        stated = held_text(row.json, row.tlp)
        if stated is not None:
            added.add(row.tlp)
        elif row.type == "marking-definition":
            written.add(row.id)
        out.write(row.json if stated is None else stated)
        n += 1
    for level in sorted(added):
        if tlp_marking_ref(level) not in written:
            out.write(("," if n else "") + "\n" + canonical_json(tlp_marking_definition(level)))
            n += 1
    out.write("\n]}\n")
    return n
