"""Which intrusion sets the node's own intelligence ties an observed value to.

ATT&CK carries behaviour, not indicators, so infrastructure (an IP, a domain, a URL, a
file hash seen in an incident) can only weigh in attribution where the store already links
that value to an actor: an indicator whose pattern names the value, which `indicates` a
threat actor or intrusion set, possibly one `attributed-to` hop further (the APT1 report:
`arrowservice.net` indicates "Ugly Gorilla", which APT1 is attributed to). Such a link is
the strongest evidence an analyst has, and the one every CTI team checks first.

The walk is short (two relationship hops) and goes only through objects that describe
actors, campaigns and infrastructure: never through malware or tools, whose reuse across
groups would tie a commodity loader to every actor that ever used it (software is its own
evidence in the ranking, weighted by how rare it is). Everything is read with the reader's
`Access`, so a link marked for a smaller audience never raises a candidate for a larger one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shieldwall.assess.actors import actor_index
from shieldwall.store import Access, Store

MAX_HOPS = 2
SEARCH_LIMIT = 200
ACTOR_TYPES = frozenset({"intrusion-set", "threat-actor"})
# Objects a link may pass through; software (malware, tool) deliberately absent.
THROUGH_TYPES = frozenset({
    "indicator", "infrastructure", "campaign", "threat-actor", "intrusion-set",
    "observed-data", "ipv4-addr", "ipv6-addr", "domain-name", "url", "file",
    "x509-certificate",
})
LINK_RELATIONSHIPS = frozenset({
    "indicates", "attributed-to", "uses", "related-to", "derived-from", "based-on",
    "consists-of", "communicates-with", "resolves-to", "controls", "hosts", "owns",
})


def _stix_type(stix_id: str) -> str:
    return stix_id.split("--", 1)[0]


def _names_value(obj: Mapping[str, Any], value: str) -> bool:
    """A pattern names the value as a whole STIX string literal, not as a substring
    ('1.2.3.4' must not match '11.2.3.45'); other objects by their value or name."""
    value = value.lower()
    if obj.get("type") == "indicator":
        literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return literal in str(obj.get("pattern") or "").lower()
    return value in (str(obj.get("value") or "").lower(), str(obj.get("name") or "").lower())


def _seeds(store: Store, values: Iterable[str], access: Access | None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for value in values:
        hits = {row.id for row in store.search(value, limit=SEARCH_LIMIT, access=access)
                if row.type in THROUGH_TYPES and _names_value(row.obj(), value)}
        if hits:
            out[value] = hits
    return out


def _neighbours(store: Store, frontier: set[str], access: Access | None
                ) -> dict[str, set[str]]:
    """The walkable links of `frontier`'s objects the reader may see, read through the
    store's relationship-end indexes (one indexed query a hop, not a scan of every
    relationship)."""
    edges: dict[str, set[str]] = {}
    for row in store.linked(frontier, access):
        rel = row.obj()
        if rel.get("relationship_type") not in LINK_RELATIONSHIPS:
            continue
        a, b = str(rel.get("source_ref") or ""), str(rel.get("target_ref") or "")
        if _stix_type(a) in THROUGH_TYPES and _stix_type(b) in THROUGH_TYPES:
            edges.setdefault(a, set()).add(b)
            edges.setdefault(b, set()).add(a)
    return edges


def _attack_group(obj: Mapping[str, Any]) -> str | None:
    """The ATT&CK group an actor object stands for: its own ATT&CK id, else any of its
    names through ATT&CK's and the MISP galaxy's aliases."""
    for ref in obj.get("external_references") or ():
        if isinstance(ref, Mapping) and ref.get("source_name") == "mitre-attack":
            gid = actor_index().resolve(str(ref.get("external_id") or ""))
            if gid:
                return gid
    index = actor_index()
    for name in (obj.get("name"), *(obj.get("aliases") or ())):
        if isinstance(name, str) and (gid := index.resolve(name)):
            return gid
    return None


def infrastructure_links(
    store: Store, values: Iterable[str], *, access: Access | None = None
) -> dict[str, set[str]]:
    """Observed value -> ATT&CK ids of the groups the store ties it to (for `rank`)."""
    seeds = _seeds(store, dict.fromkeys(v.strip() for v in values if v.strip()), access)
    if not seeds:
        return {}
    groups: dict[str, str | None] = {}
    out: dict[str, set[str]] = {}
    for value, start in seeds.items():
        seen, frontier = set(start), set(start)
        for _ in range(MAX_HOPS):
            edges = _neighbours(store, frontier, access) if frontier else {}
            frontier = {n for f in frontier for n in edges.get(f, ())} - seen
            seen |= frontier
        for node in seen:
            if _stix_type(node) not in ACTOR_TYPES:
                continue
            if node not in groups:
                row = store.get(node, access)
                groups[node] = _attack_group(row.obj()) if row is not None else None
            if groups[node]:
                out.setdefault(value, set()).add(groups[node])
    return out
