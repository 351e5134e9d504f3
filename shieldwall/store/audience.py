"""What a stored object is marked for: the input to marking anything derived from it.

A sighting repeats its indicator's value, a mail-triage sighting the matched address; what
the node derives must be marked no wider than its source (`stix.markings.narrowest_audience`).
"""

from __future__ import annotations

from collections.abc import Callable

from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_of_marking_definition
from shieldwall.store.store import Store
from shieldwall.store.types import Query, StoredVersion

Marking = tuple[TLP, tuple[str, ...], str]


def row_marking(row: StoredVersion) -> Marking:
    """(level, audience, deliverer) of one stored version."""
    names = row.obj().get(AUDIENCE_PROPERTY)
    return (row.tlp, tuple(str(n) for n in names) if isinstance(names, list) else (),
            row.source)


def stored_marking(store: Store) -> Callable[[str], list[Marking]]:
    """A cached lookup: id -> [(level, audience, deliverer)] of its latest stored version.

    An id the store does not hold gives []: the derived object then takes the node's own
    floor, which is all that is known."""
    cache: dict[str, list[Marking]] = {}

    def lookup(stix_id: str) -> list[Marking]:
        hit = cache.get(stix_id)
        if hit is None:
            row = store.get(stix_id)
            hit = [] if row is None else [row_marking(row)]
            cache[stix_id] = hit
        return hit

    return lookup


def stored_tlp_markings(store: Store) -> dict[str, TLP]:
    """TLP levels of the custom marking definitions the store holds (MISP and OpenCTI
    mint their own ids for TLP levels): what an object marked with one is held at."""
    found: dict[str, TLP] = {}
    for row in store.iter_query(Query(types=["marking-definition"])):
        level = tlp_of_marking_definition(row.obj())
        if level is not None:
            found[row.id] = level
    return found
