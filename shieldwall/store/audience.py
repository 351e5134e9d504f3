"""What a stored object is marked for: the input to marking anything derived from it.

A sighting repeats its indicator's value, a mail-triage sighting the matched address; what
the node derives must be marked no wider than its source (`stix.markings.narrowest_audience`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import orjson
from sqlalchemy import insert, select, update

from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, declared_tlp, stricter
from shieldwall.store.schema import tlp_definitions
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


def stored_tlp_markings(
    store: Store, sources: Iterable[str], ids: Iterable[str] | None = None
) -> dict[str, TLP]:
    """TLP levels of the custom marking definitions (MISP and OpenCTI mint their own ids
    for TLP levels) that `sources` supplied: the definition objects they delivered (every
    stored version) and what they declared without a stored row of their own
    (`record_tlp_definitions`), the stricter level where these differ; only `ids` when
    given.

    Only these count for what `sources` deliver: a definition is its supplier's word
    about its own objects, and one stored by a member must never lower (nor raise) the
    level of another member's objects, which fall to the node's default instead
    (`stix.markings.declared_tlp`). Callers pass the deliverer and the node's own member.
    """
    wanted = sorted(set(sources))
    t = tlp_definitions
    q = select(t.c.marking_id, t.c.tlp).where(t.c.source.in_(wanted))
    if ids is not None:
        ids = sorted(set(ids))
        rows = store.rows_by_ids(ids, ("source", "json"))
        texts: Iterable[tuple[str, str]] = ((src, text) for src, text in rows)
        q = q.where(t.c.marking_id.in_(ids))
    else:
        texts = ((r.source, r.json) for r in
                 store.iter_query(Query(types=["marking-definition"], versions="all")))
    found = declared_tlp(orjson.loads(text) for src, text in texts if src in wanted)
    with store.engine.connect() as conn:
        recorded = {mid: TLP(level) for mid, level in conn.execute(q)}
    return stricter(found, recorded)


def record_tlp_definitions(store: Store, source: str, levels: Mapping[str, TLP]) -> None:
    """Remember the levels `source` declared for custom marking-definition ids
    (`stix.markings.declared_tlp` of what it delivered), the stricter where it declared
    one before: its later deliveries that rely on them without sending them again are
    held at those levels, even when the definition object itself was not stored."""
    if not levels:
        return
    t = tlp_definitions
    with store.transaction() as conn:
        held = dict(conn.execute(select(t.c.marking_id, t.c.tlp).where(
            t.c.source == source, t.c.marking_id.in_(sorted(levels)))).all())
        for mid, level in levels.items():
            if mid not in held:
                conn.execute(insert(t).values(marking_id=mid, source=source, tlp=int(level)))
            elif int(level) > held[mid]:
                conn.execute(update(t).where(t.c.marking_id == mid, t.c.source == source)
                             .values(tlp=int(level)))
