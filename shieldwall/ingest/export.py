"""Export a STIX 2.1 bundle of what the store holds, filtered by type, time and TLP ceiling.

The bundle is written by concatenating the stored canonical JSON texts, so an export
streams at disk speed in bounded memory. Only an object whose own standard TLP refs do not
say the level this node holds it at (an unmarked object held at the node's default, one
marked by a custom definition) is parsed: it leaves with FIRST's TLP 2.0 ref for that level
added (`stix.outbound`), and the bundle ends with the TLP 2.0 definitions its objects name,
so the next node never reads an object at a wider audience than this one does.

With a type or time filter, what an exported sighting or observed-data refers to (its
observed-data, their observables, the addresses those name) is exported too, under the same
TLP ceiling and member access: a consumer (misp-stix) cannot resolve a sighting without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from shieldwall.stix.canonical import canonical_json, loads
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP, TLP2_IDS, tlp_marking_definition, tlp_marking_ref
from shieldwall.stix.outbound import held_text
from shieldwall.store import Access, Query, Store
from shieldwall.store.types import StoredVersion


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
    named: set[TLP] = set()  # TLP 2.0 levels the bundle's objects refer to
    written: set[str] = set()
    # Ids a consumer needs to resolve what it got, when a filter may have left them out.
    follow = _may_refer(types, modified_from_us, modified_to_us)
    needed: list[str] = []

    def write(row: StoredVersion) -> None:
        nonlocal n
        if n:
            out.write(",")
        out.write("\n")
        stated = held_text(row.json, row.tlp)
        if stated is not None:
            named.add(row.tlp)
        elif row.type == "marking-definition":
            written.add(row.id)
        text = row.json if stated is None else stated
        named.update(level for level, ref in TLP2_IDS.items() if ref in text)
        out.write(text)
        n += 1
        if follow:
            written.add(row.id)
            if row.type in _REFERRING or _is_observable(row):
                needed.extend(_refs(row))

    for row in store.iter_query(q):
        write(row)
    while needed:
        ids = [i for i in dict.fromkeys(needed) if i not in written]
        needed = []
        for i in range(0, len(ids), 1_000):
            dep = Query(ids=ids[i : i + 1_000], versions="last", tlp_max=tlp_max, access=access)
            for row in store.iter_query(dep):
                write(row)
    for level in sorted(named):
        if tlp_marking_ref(level) not in written:
            out.write(("," if n else "") + "\n" + canonical_json(tlp_marking_definition(level)))
            n += 1
    out.write("\n]}\n")
    return n


# A sighting is resolved through its observed-data, an observed-data through its observables
# (misp-stix, for one, reports each one missing), and an observable through those it names
# (a network-traffic's addresses).
_REFERRING = {"sighting": ("observed_data_refs",), "observed-data": ("object_refs",)}


_NOT_FOLLOWED = frozenset({"object_marking_refs", "created_by_ref"})


def _may_refer(types: Sequence[str] | None, lo: int | None, hi: int | None) -> bool:
    """Could the filters have left out what an exported object refers to?"""
    if types:
        return bool({"sighting", "observed-data"} & set(types))
    return lo is not None or hi is not None


def _is_observable(row: StoredVersion) -> bool:
    """Observables (SCOs) carry no `created`; domain objects must."""
    return '"created":' not in row.json


def _refs(row: StoredVersion) -> list[str]:
    obj = loads(row.json)
    keys = _REFERRING.get(row.type) or [
        k for k in obj if k.endswith(("_ref", "_refs")) and k not in _NOT_FOLLOWED]
    found: list[str] = []
    for key in keys:
        value = obj.get(key)
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, str) and "--" in ref:
                found.append(ref)
    return found
