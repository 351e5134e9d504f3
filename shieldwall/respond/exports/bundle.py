"""The case as one STIX 2.1 bundle that passes the OASIS `stix2-validator`.

It holds what the reader may see of the case (`load_case`), the `related-to` links that
tie those items to the incident (read through the same `Access`: a link to an item the
reader may not see is not visible to it either), the sightings its events name that the
reader may read, Shieldwall's extension-definition and its identity (the definition of the
case's own types, so any STIX consumer can look them up), and the TLP 2.0 marking
definitions its objects refer to. Every object states its TLP (`stix.outbound`): one
without a marking leaves stating AMBER, the level the store holds unmarked objects at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from shieldwall.respond.cases import Case
from shieldwall.respond.exports.view import items, tlp_of
from shieldwall.respond.model import CASE_LINK, published_objects
from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP2_IDS, tlp_marking_definition
from shieldwall.stix.outbound import state_held_tlp
from shieldwall.store import Access, Query, Store


def _linked(store: Store, case: Case, access: Access, held: set[str]) -> list[dict[str, Any]]:
    out = []
    for row in store.linked([case.id], access):
        rel = row.obj()
        if (rel.get("relationship_type") == CASE_LINK and rel.get("target_ref") == case.id
                and rel.get("source_ref") in held):
            out.append(rel)
    return out


def _named(store: Store, ids: Iterable[str], access: Access, held: set[str]
           ) -> list[dict[str, Any]]:
    wanted = sorted({i for i in ids if i not in held})
    out: list[dict[str, Any]] = []
    for i in range(0, len(wanted), 500):
        out += [r.obj() for r in store.query(Query(ids=wanted[i:i + 500], access=access)).rows]
    return out


def case_objects(store: Store, case: Case, access: Access) -> list[dict[str, Any]]:
    """The bundle's objects, in a stable order (the incident first)."""
    objs = [dict(o) for o in items(case)]
    held = {o["id"] for o in objs}
    objs += _linked(store, case, access, held)
    held |= {o["id"] for o in objs}
    objs += _named(store, (ref for e in case.events for ref in e.get("sighting_refs") or ()),
                   access, held)
    held |= {o["id"] for o in objs}
    if any(o.get("type", "").startswith("x-shieldwall-") for o in objs):
        objs += [o for o in published_objects() if o["id"] not in held]
    for obj in objs:
        state_held_tlp(obj, tlp_of(obj))
    return objs


def stix_bundle(store: Store, case: Case, access: Access, out: TextIO) -> int:
    """Write the bundle; returns how many objects it holds."""
    objs = case_objects(store, case, access)
    texts = [canonical_json(o) for o in objs]
    levels = sorted({level for level, ref in TLP2_IDS.items() if any(ref in t for t in texts)})
    texts += [canonical_json(tlp_marking_definition(level)) for level in levels]
    out.write(f'{{"type":"bundle","id":"{new_id("bundle")}","objects":[\n')
    out.write(",\n".join(texts))
    out.write("\n]}\n")
    return len(texts)
