"""Evidence custody as CASE/UCO JSON-LD (CASE 1.5, the ontology `case-utils` validates).

The mapping, one node per stored object the reader may see, each node's IRI built from
its STIX id, so two exports of the same case name the same nodes:

| Shieldwall                     | CASE/UCO                                                      |
|--------------------------------|---------------------------------------------------------------|
| the case (`incident`)          | `investigation:Investigation` (form "incident")               |
| evidence item                  | `observable:File` with a `FileFacet` (name, size) and a       |
|                                | `ContentDataFacet` (SHA-256), held by an                      |
|                                | `investigation:ProvenanceRecord` (exhibit number: its id,     |
|                                | description: where it is kept)                                |
| its collection                 | `investigation:InvestigativeAction` "collected", performer    |
|                                | the responder, result the provenance record                   |
| custody event                  | `investigation:InvestigativeAction` named for its action,     |
|                                | object the provenance record, informed by the previous event  |
|                                | of its chain (`wasInformedBy`), the chain's hashes and        |
|                                | signature in its description                                  |
| responder (`MEMBER:PERSON`)    | `identity:Person`                                             |

Each node carries its TLP as a `core:tag`. The custody chain's proof (hashes, Ed25519
signature) is carried, not re-derived: `shieldwall case verify` checks it; CASE/UCO has no
property for a signature.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TextIO

import orjson

from shieldwall.respond.cases import Case
from shieldwall.respond.exports.view import tlp_of

CONTEXT = {
    "kb": "urn:shieldwall:kb:",
    "action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "investigation": "https://ontology.caseontology.org/case/investigation/",
    "observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
_NS = uuid.UUID("4b1b6f0e-5d1c-4d8e-9f49-3f0d1e6c2a77")


def _iri(kind: str, key: str) -> str:
    """`kb:<kind>-<uuid>`: the UUID of a STIX id as it is, else derived from `key`."""
    tail = key.rpartition("--")[2]
    try:
        return f"kb:{kind}-{uuid.UUID(tail)}"
    except ValueError:
        return f"kb:{kind}-{uuid.uuid5(_NS, key)}"


def _time(ts: Any) -> dict[str, str]:
    return {"@type": "xsd:dateTime", "@value": str(ts)}


def _person(nodes: dict[str, dict[str, Any]], who: Any) -> dict[str, str]:
    iri = _iri("person", f"person:{who}")
    nodes.setdefault(iri, {"@id": iri, "@type": "identity:Person", "core:name": str(who)})
    return {"@id": iri}


def _tagged(node: dict[str, Any], obj: Mapping[str, Any]) -> dict[str, Any]:
    node["core:tag"] = [tlp_of(obj).label]
    return node


def custody_graph(case: Case, out: TextIO) -> int:
    """Write the JSON-LD document; returns how many custody records (collections and
    custody events) it holds."""
    nodes: dict[str, dict[str, Any]] = {}
    inc = case.incident or {}
    investigation = _tagged({
        "@id": _iri("investigation", case.id), "@type": "investigation:Investigation",
        "core:name": str(inc.get("name") or case.id),
        "investigation:investigationForm": "incident",
        "core:object": [],
    }, inc)
    records = 0
    for ev in sorted(case.evidence, key=lambda e: (e["created"], e["id"])):
        file_iri = _iri("file", ev["id"])
        nodes[file_iri] = _tagged({
            "@id": file_iri, "@type": "observable:File",
            "core:hasFacet": [
                {"@id": _iri("file-facet", ev["id"] + ":file"), "@type": "observable:FileFacet",
                 "observable:fileName": str(ev.get("name")),
                 "observable:sizeInBytes": {"@type": "xsd:integer",
                                            "@value": str(int(ev.get("size") or 0))}},
                {"@id": _iri("content-data-facet", ev["id"] + ":content"),
                 "@type": "observable:ContentDataFacet",
                 "observable:hash": [{
                     "@id": _iri("hash", ev["id"] + ":sha256"), "@type": "types:Hash",
                     "types:hashMethod": "SHA256",  # HashNameVocab, as xsd:string (UCO 1.4)
                     "types:hashValue": {"@type": "xsd:hexBinary",
                                         "@value": str(ev.get("sha256"))}}]},
            ],
        }, ev)
        record_iri = _iri("provenance-record", ev["id"])
        nodes[record_iri] = _tagged({
            "@id": record_iri, "@type": "investigation:ProvenanceRecord",
            "investigation:exhibitNumber": ev["id"],
            "core:description": f"Kept at: {ev.get('kept_at')}",
            "core:object": [{"@id": file_iri}],
        }, ev)
        collected_iri = _iri("collection", ev["id"])
        nodes[collected_iri] = _tagged({
            "@id": collected_iri, "@type": "investigation:InvestigativeAction",
            "core:name": "collected",
            "core:description": str(ev.get("collected_how")),
            "action:startTime": _time(ev.get("collected") or ev["created"]),
            "action:performer": _person(nodes, ev.get("collected_by")),
            "action:result": [{"@id": record_iri}],
        }, ev)
        investigation["core:object"] += [{"@id": record_iri}, {"@id": collected_iri}]
        records += 1
    records_by_evidence = {ev["id"]: _iri("provenance-record", ev["id"]) for ev in case.evidence}
    chains = sorted(case.custody, key=lambda c: (str(c.get("evidence_ref")),
                                                 str(c.get("signing_key")),
                                                 int(c.get("chain_seq") or 0)))
    previous: dict[tuple[str, str], str] = {}
    for c in chains:
        iri = _iri("custody-event", c["id"])
        chain = (str(c.get("evidence_ref")), str(c.get("signing_key")))
        node = _tagged({
            "@id": iri, "@type": "investigation:InvestigativeAction",
            "core:name": str(c.get("custody_action")),
            "core:description": _custody_text(c),
            "action:startTime": _time(c.get("occurred") or c["created"]),
            "action:performer": _person(nodes, c.get("actor")),
        }, c)
        record = records_by_evidence.get(str(c.get("evidence_ref")))
        if record:
            node["action:object"] = [{"@id": record}]
        if chain in previous:
            node["investigation:wasInformedBy"] = [{"@id": previous[chain]}]
        previous[chain] = iri
        nodes[iri] = node
        investigation["core:object"].append({"@id": iri})
        records += 1
    if not investigation["core:object"]:
        del investigation["core:object"]
    doc = {"@context": CONTEXT, "@graph": [investigation, *nodes.values()]}
    out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    return records


def _custody_text(c: Mapping[str, Any]) -> str:
    """The custody event's own words and its place in the signed chain, in one text."""
    parts = [f"Shieldwall custody event {c['id']}: {c.get('custody_action')} by "
             f"{c.get('actor')}"]
    for key in ("from_holder", "to_holder", "location", "tool", "result", "observed_sha256",
                "copy_ref", "description"):
        if c.get(key):
            parts.append(f"{key.replace('_', ' ')}: {c[key]}")
    parts.append(f"chain {c.get('signing_key')} #{c.get('chain_seq')}, previous "
                 f"{c.get('chain_prev')}, evidence version {c.get('evidence_hash')}, "
                 f"Ed25519 signature {c.get('signature')}")
    return "; ".join(parts)
