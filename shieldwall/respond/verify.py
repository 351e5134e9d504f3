"""`case verify`: is a case's evidence and chain of custody what its nodes signed?

Every finding names its kind, the object and what is wrong:

- `changed`: an event whose signature does not verify (a byte changed after signing),
  or an evidence version no custody event attested (a byte changed since it was
  recorded), or an event whose signed properties are malformed;
- `missing`: a gap in a chain, an event another event saw (its `chain_seen`), a chain
  head this node verified before (`remembered`), an evidence item an event is about, or
  the version of it the event attested, or an evidence item with no custody event;
- `reordered`: an event whose signed link (`chain_prev`) is the hash of another event of
  its chain than the one before it, or dated before the event before it;
- `replayed`: a chain position taken by two events, an event stored in more than one
  version (custody events are written once), or an event of another case;
- `wrong-node`: signed by a key a node of another member published, not one of the
  member the event speaks for (`created_by_ref`);
- `unknown-key`: signed by a key no key object of the event's member reached this node:
  the signature can be neither trusted nor refused here (a node cannot verify a key it
  never received); verification fails until the member's key object arrives.

The order in which events are presented (stored, packed in a kit) does not matter: a
chain's order is its signed `chain_seq` and `chain_prev`.
"""

from __future__ import annotations

import fcntl
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from shieldwall.keys.signing import (
    NODE_KEY_TYPE,
    KeyRing,
    fingerprint,
    keyring,
    verify_signature,
)
from shieldwall.respond.custody import chain_key, genesis, object_hash, signed_bytes
from shieldwall.respond.model import CASE_LINK, CUSTODY_EVENT, EVIDENCE, RespondError
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.timestamps import parse_ts
from shieldwall.store import Access, Query, Store

KINDS = ("changed", "missing", "reordered", "replayed", "wrong-node", "unknown-key")


@dataclass(frozen=True)
class Finding:
    kind: str
    object_id: str
    message: str


@dataclass
class Report:
    case_id: str
    evidence: int = 0
    events: int = 0
    chains: int = 0
    findings: list[Finding] = field(default_factory=list)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: str, object_id: str, message: str) -> None:
        self.findings.append(Finding(kind, object_id, message))


def _chain_name(key: tuple[str, str], members: Iterable[str]) -> str:
    who = ", ".join(sorted(members)) or "unknown member"
    return f"node {fingerprint(key[1])} ({who}) for {key[0]}"


def head_key(chain: tuple[str, str]) -> str:
    """How a chain is named among `remembered` heads: `<evidence id>|<signing key>`."""
    return f"{chain[0]}|{chain[1]}"


def verify_custody(
    case_id: str,
    evidence_versions: Iterable[Mapping[str, Any]],
    event_versions: Iterable[Mapping[str, Any]],
    ring: KeyRing,
    *,
    remembered: Mapping[str, tuple[int, str]] | None = None,
) -> Report:
    """Check the evidence items and custody events of `case_id`: every stored version of
    each, as the store holds them under those types (so an object whose `type` was
    changed is still judged, and found changed). `remembered`: chain heads this node
    verified before (`Report.heads` of an earlier good run), to see a chain cut short."""
    report = Report(case_id)
    evidence: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in evidence_versions:
        evidence[str(obj.get("id"))].append(dict(obj))
    for obj in event_versions:
        by_id[str(obj.get("id"))].append(dict(obj))
    report.evidence = len(evidence)

    events: list[dict[str, Any]] = []
    hashes: dict[int, str] = {}
    for oid, versions in by_id.items():
        distinct = {object_hash(v): v for v in versions}
        if len(distinct) > 1:
            report.add("replayed", oid, f"custody event {oid} is held in {len(distinct)} "
                       "versions; a custody event is written once")
        for h, v in distinct.items():
            hashes[id(v)] = h
            events.append(v)
    report.events = len(events)

    bad: set[int] = set()  # events whose own content cannot be trusted
    chains: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        oid = str(e.get("id"))
        if not _well_formed(e):
            report.add("changed", oid, f"custody event {oid} is malformed: its chain "
                       "properties (signing_key, chain_seq, chain_prev, signature) are "
                       "missing or of the wrong type")
            bad.add(id(e))
            continue
        if e.get("case_ref") != case_id:
            report.add("replayed", oid, f"custody event {oid} belongs to case "
                       f"{e.get('case_ref')}, not {case_id}")
        chains[chain_key(e)].append(e)
    report.chains = len(chains)
    for chain in chains.values():
        _authenticate(report, chain, hashes, bad)
    signers: dict[str, set[str]] = {}
    for e in events:
        if id(e) not in bad:
            _check_signer(report, e, ring, signers)

    for key, chain in chains.items():
        _check_chain(report, key, chain, hashes, bad, ring)
    _check_seen(report, chains, hashes, bad)
    for key, (seq, h) in (remembered or {}).items():
        ev_id, _, sign = key.partition("|")
        at = [e for e in chains.get((ev_id, sign), []) if e.get("chain_seq") == seq]
        if any(id(e) in bad for e in at):
            continue  # its change is already reported
        if not any(hashes[id(e)] == h for e in at):
            report.add("missing", ev_id, f"event #{seq} of the chain of "
                       f"{_chain_name((ev_id, sign), ring.members_of(sign))}, verified here "
                       "before, is gone (the chain was cut short or rewritten)")
    _check_evidence(report, case_id, evidence, events, bad)
    if report.ok:
        for key, chain in chains.items():
            last = max(chain, key=lambda e: int(e["chain_seq"]))
            report.heads[head_key(key)] = (int(last["chain_seq"]), hashes[id(last)])
    return report


def _well_formed(e: Mapping[str, Any]) -> bool:
    seq = e.get("chain_seq")
    return (e.get("type") == CUSTODY_EVENT and isinstance(e.get("signing_key"), str)
            and isinstance(e.get("signature"), str)
            and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1
            and isinstance(e.get("chain_prev"), str) and isinstance(e.get("evidence_ref"), str))


def _authenticate(report: Report, chain: list[dict[str, Any]], hashes: Mapping[int, str],
                  bad: set[int]) -> None:
    """Which events of one chain are as their node signed them. The newest event's
    signature covers, through `chain_prev`, the exact bytes of the one before it, and so
    on down: an event whose successor is authentic and links to it is authentic without
    checking its own signature. Only the events where that cover stops (the newest, one
    before a gap or a broken link, a position taken twice) pay for an Ed25519 check: a
    chain of 10,000 events costs one, not 10,000 (~0.1-0.4 ms each)."""
    at: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in chain:
        at[int(e["chain_seq"])].append(e)
    covered: dict[int, str] = {}  # seq -> the hash its authentic successor links to
    for seq in sorted(at, reverse=True):
        for e in at[seq]:
            if len(at[seq]) == 1 and covered.get(seq) == hashes[id(e)]:
                good = True
            else:
                good = verify_signature(str(e["signing_key"]), str(e["signature"]),
                                        signed_bytes(e))
            if good:
                if len(at[seq]) == 1:
                    covered[seq - 1] = str(e["chain_prev"])
                continue
            bad.add(id(e))
            report.add("changed", str(e.get("id")), f"custody event {e.get('id')} "
                       f"(#{seq} of node {fingerprint(str(e['signing_key']))}): its signature "
                       "does not verify: it was changed after it was signed, or signed by "
                       "another key than the one it names")


def _check_signer(report: Report, e: Mapping[str, Any], ring: KeyRing,
                  signers: dict[str, set[str]]) -> None:
    key, oid, claimed = str(e["signing_key"]), str(e.get("id")), e.get("created_by_ref")
    members = ring.members_of(key)
    if key not in signers:
        signers[key] = {member_identity_id(m) for m in members}
    if claimed in signers[key]:
        return
    if members:
        report.add("wrong-node", oid, f"custody event {oid} speaks for {claimed} but is "
                   f"signed by a node of {', '.join(sorted(members))} (key "
                   f"{fingerprint(key)})")
    else:
        report.add("unknown-key", oid, f"custody event {oid} is signed by node key "
                   f"{fingerprint(key)}, which no key object of its member ({claimed}) "
                   "reached this node: cannot verify it here")


def _check_chain(report: Report, key: tuple[str, str], chain: list[dict[str, Any]],
                 hashes: Mapping[int, str], bad: set[int], ring: KeyRing) -> None:
    name = _chain_name(key, ring.members_of(key[1]))
    at: dict[int, dict[str, Any]] = {}
    position = {hashes[id(e)]: int(e["chain_seq"]) for e in chain}
    for e in sorted(chain, key=lambda e: (int(e["chain_seq"]), str(e.get("id")))):
        seq = int(e["chain_seq"])
        if seq in at:
            report.add("replayed", str(e.get("id")), f"#{seq} of the chain of {name} is "
                       f"taken by two events ({at[seq].get('id')} and {e.get('id')})")
            continue
        at[seq] = e
    top = max(at)
    for seq in range(1, top + 1):
        e = at.get(seq)
        if e is None:
            report.add("missing", key[0], f"event #{seq} of the chain of {name} is missing "
                       f"(the chain has #{top})")
            continue
        before = at.get(seq - 1)
        if id(e) in bad:
            continue
        oid = str(e.get("id"))
        expected = genesis(*key) if seq == 1 else hashes[id(before)] if before else None
        if expected is None or e["chain_prev"] == expected:
            if before is not None and id(before) not in bad and _earlier(e, before):
                report.add("reordered", oid, f"#{seq} of the chain of {name} is dated "
                           f"before #{seq - 1}")
            continue
        if before is not None and id(before) in bad:
            continue  # the predecessor's change is already reported
        linked = position.get(str(e["chain_prev"]))
        if linked is not None:
            report.add("reordered", oid, f"#{seq} of the chain of {name} was signed to "
                       f"follow #{linked}, not #{seq - 1}")
        else:
            report.add("missing", oid, f"#{seq} of the chain of {name} follows an event "
                       "that is not here (the one before it was replaced or removed)")


def _earlier(e: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    """Is `e` dated before `before`? As instants: a timestamp's text has millisecond
    precision when its microseconds are round (`.123Z` sorts after `.123400Z` as text)."""
    a, b = str(e.get("created", "")), str(before.get("created", ""))
    if a >= b:
        return False
    try:
        return parse_ts(a) < parse_ts(b)
    except ValueError:
        return True


def _check_seen(report: Report, chains: Mapping[tuple[str, str], list[dict[str, Any]]],
                hashes: Mapping[int, str], bad: set[int]) -> None:
    at: dict[tuple[str, str, Any], list[dict[str, Any]]] = defaultdict(list)
    for key, chain in chains.items():
        for x in chain:
            at[(*key, x.get("chain_seq"))].append(x)
    for chain in chains.values():
        for e in chain:
            seen = e.get("chain_seen") or []
            if id(e) in bad or not isinstance(seen, list):
                continue
            for s in seen:
                if not isinstance(s, dict):
                    continue
                other = (str(e.get("evidence_ref")), str(s.get("signing_key")))
                found = at.get((*other, s.get("chain_seq")), [])
                if any(hashes[id(x)] == s.get("event_hash") for x in found):
                    continue
                if any(id(x) in bad for x in found):
                    continue  # that event's change is already reported
                report.add("missing", str(e.get("id")), f"custody event {e.get('id')} saw "
                           f"#{s.get('chain_seq')} of node {fingerprint(other[1])}'s chain "
                           f"for {other[0]}, which is not here")


def _check_evidence(report: Report, case_id: str,
                    evidence: Mapping[str, list[dict[str, Any]]],
                    events: list[dict[str, Any]], bad: set[int]) -> None:
    attested: dict[str, set[str]] = defaultdict(set)
    about = {e.get("evidence_ref") for e in events}
    for e in events:
        if id(e) not in bad:
            attested[str(e.get("evidence_ref"))].add(str(e.get("evidence_hash")))
    held: dict[str, set[str]] = {}
    for oid, versions in evidence.items():
        held[oid] = {object_hash(v) for v in versions}
        if oid not in attested and oid not in about:
            report.add("missing", oid, f"evidence {oid} has no custody event (its collection "
                       "was never recorded, or its events are gone)")
            continue
        for v in versions:
            if v.get("case_ref") != case_id:
                report.add("replayed", oid, f"evidence {oid} belongs to case "
                           f"{v.get('case_ref')}, not {case_id}")
            if object_hash(v) not in attested.get(oid, set()):
                report.add("changed", oid, f"evidence {oid} (version {v.get('modified')}) is "
                           "not what any custody event attested: it changed after it was "
                           "recorded")
    for e in events:
        if id(e) in bad:
            continue
        ref = str(e.get("evidence_ref"))
        if ref not in held:
            report.add("missing", str(e.get("id")), f"evidence {ref}, which custody event "
                       f"{e.get('id')} is about, is not here")
        elif str(e.get("evidence_hash")) not in held[ref]:
            report.add("missing", str(e.get("id")), f"the version of evidence {ref} that "
                       f"custody event {e.get('id')} attested is not here")


# ---- a case in the store -------------------------------------------------------------------


def case_custody(store: Store, case_id: str, access: Access
                 ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Every stored version of the case's evidence items (by id, oldest `modified` first)
    and custody events that `access` admits: the items linked to the case, and any
    evidence item its events are about. Split by the type in the stored id (the store's
    `type` column holds the same), so an object whose JSON `type` was changed is still
    judged.

    The linked items are read in one query that follows the case's links inside the
    database (`_linked_custody`), as bare rows: a case of 10,000 events used to read its
    10,000 links into Python, then the events 2,000 ids a query."""
    kinds = (EVIDENCE, CUSTODY_EVENT)
    evidence: dict[str, list[dict[str, Any]]] = defaultdict(list)
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    rows = _linked_custody(store, case_id, access, kinds)
    while rows:
        wanted: set[str] = set()
        for oid, text in rows:
            seen.add(oid)
            obj = orjson.loads(text)
            if oid.startswith(CUSTODY_EVENT + "--"):
                events.append(obj)
                ref = obj.get("evidence_ref")
                if isinstance(ref, str):
                    wanted.add(ref)
            elif oid.startswith(EVIDENCE + "--"):
                evidence[oid].append(obj)
        batch = sorted(wanted - seen)  # evidence items an event names, not linked itself
        seen |= wanted
        rows = []
        for i in range(0, len(batch), 2_000):
            page, _ = store.read_rows(Query(ids=batch[i:i + 2_000], versions="all",
                                            access=access))
            rows += [(r.id, r.json) for r in page]
    for versions in evidence.values():
        versions.sort(key=lambda v: str(v.get("modified")))
    return dict(evidence), events


def _linked_custody(store: Store, case_id: str, access: Access, kinds: tuple[str, ...]
                    ) -> list[tuple[str, str]]:
    """(id, json) of every version `access` admits of the objects of `kinds` that a link
    the reader may read (`item --related-to--> case`, latest version) ties to the case:
    the links found through their target index (migration 0009), each end read in SQL,
    both sides under the store's own Access clause."""
    from shieldwall.store.where import RELATIONSHIP_ENDS, Where, add_access, where_of

    mark = "?" if store.dialect == "sqlite" else "%s"
    (source, _), (target, hint) = RELATIONSHIP_ENDS[mark]
    kind = source.replace("source_ref", "relationship_type")
    w = where_of(Query(types=list(kinds), versions="all", access=access), mark)
    links = Where(mark)
    links.add(f"r.type = 'relationship' AND {target} = ? AND {kind} = ?", case_id, CASE_LINK)
    links.add("r.is_latest AND NOT r.revoked")
    add_access(links, access, "r")
    sql = (f"SELECT o.id, o.json FROM objects o{w.sql()} AND o.id IN "
           f"(SELECT {source} FROM objects r{hint}{links.sql()}) ORDER BY o.seq")
    with store.engine.connect() as conn:
        return [(str(i), str(t)) for i, t in
                conn.exec_driver_sql(sql, (*w.params, *links.params)).all()]


def store_keyring(store: Store, access: Access | None = None) -> KeyRing:
    """The node keys this node holds (`keys.signing`: bound key objects only)."""
    return keyring(r.obj() for r in store.iter_query(Query(types=[NODE_KEY_TYPE],
                                                           access=access)))


def verify_case(store: Store, case_id: str, access: Access, *,
                heads_file: Path | None = None) -> Report:
    """`case verify`: the case's custody as `access` sees it, against the chain heads this
    node verified before (kept in `heads_file`, in the node's home rather than its
    database: whoever can rewrite the database cannot also rewrite what this node
    remembers); a good result's heads are added to it. No file: nothing remembered."""
    evidence, events = case_custody(store, case_id, access)
    remembered = _heads(heads_file).get(case_id, {}) if heads_file else {}
    versions = [v for vs in evidence.values() for v in vs]
    report = verify_custody(case_id, versions, events, store_keyring(store, access),
                            remembered=remembered)
    if report.ok and heads_file is not None and report.heads != remembered:
        _remember(heads_file, case_id, report.heads)
    return report


def _heads(path: Path) -> dict[str, dict[str, tuple[int, str]]]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RespondError(f"{path}: cannot read the custody heads this node remembers "
                           f"({exc}); move it aside to start again") from None
    return {case: {k: (int(v[0]), str(v[1])) for k, v in chains.items()}
            for case, chains in data.items()}


def _remember(path: Path, case_id: str, heads: Mapping[str, tuple[int, str]]) -> None:
    """Add `heads` to the file, whole or not at all, one writer at a time."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (path.parent / f".{path.name}.lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        data = _heads(path)
        data[case_id] = {**data.get(case_id, {}), **heads}
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
