"""A small case with evidence and custody by two nodes, for the custody tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldwall.keys.signing import KeyRing, NodeKeys, keyring, node_keys
from shieldwall.respond.custody import custody_event, heads
from shieldwall.respond.evidence import evidence_item
from shieldwall.respond.model import Marking
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP


@dataclass
class CustodyCase:
    case_id: str
    home: NodeKeys  # cert-south's node, which holds the case
    laptop: NodeKeys  # a cert-north responder's node
    evidence: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ring(self) -> KeyRing:
        return keyring([self.home.card(), self.laptop.card()])

    def act(self, keys: NodeKeys, item: dict[str, Any], action: str, actor: str,
            **details: str) -> dict[str, Any]:
        ev = custody_event(keys=keys, case_id=self.case_id, evidence=item, action=action,
                           actor=actor, chain_heads=heads(self.events), details=details)
        self.events.append(ev)
        return ev


def custody_case(tmp: Path) -> CustodyCase:
    case = CustodyCase(new_id("incident"), node_keys(tmp / "south", "cert-south"),
                       node_keys(tmp / "north", "cert-north"))
    strict = Marking(TLP.AMBER_STRICT, ("cert-north", "cell", "cert-south"))
    disk = evidence_item(creator="cert-south", case_id=case.case_id, name="disk image of srv-07",
                         sha256="ab" * 32, size=512_000_000, kept_at="south locker 3",
                         collected_by="cert-south:carol", collected_how="dd over write-blocker",
                         marking=strict)
    mem = evidence_item(creator="cert-south", case_id=case.case_id, name="memory of srv-07",
                        sha256="cd" * 32, size=16_000_000, kept_at="south share",
                        collected_by="cert-south:carol", collected_how="winpmem",
                        marking=Marking(TLP.AMBER))
    case.evidence += [disk, mem]
    case.act(case.home, disk, "collected", "cert-south:carol")
    case.act(case.home, disk, "handed-over", "cert-south:carol", from_holder="carol",
             to_holder="cert-north:alice")
    case.act(case.laptop, disk, "copied", "cert-north:alice", location="alice laptop")
    case.act(case.laptop, disk, "analysed", "cert-north:alice", tool="volatility 3",
             result="beacon to 203.0.113.9")
    case.act(case.home, disk, "reverified", "cert-south:carol", observed_sha256="ab" * 32,
             result="match")
    case.act(case.home, mem, "collected", "cert-south:carol")
    case.act(case.laptop, mem, "analysed", "cert-north:alice", tool="strings")
    return case
