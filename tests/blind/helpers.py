"""What the blind-matching tests share: an owner with protected indicators in a store, and
an in-process `send` to its evaluator (the HTTP endpoint has tests of its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shieldwall.blind.evaluate import Evaluator, Limits
from shieldwall.blind.sets import publish, select_entries
from shieldwall.keys.oprf import oprf_key
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from tests.factories import indicator

OWNER = "cert-north"
ALLY = "cert-east"
SECRET_IP = "203.0.113.77"
SECRET_DOMAIN = "exfil.secret-op.example"


def protected(value: str = SECRET_IP, path: str = "ipv4-addr:value", tlp: TLP = TLP.RED,
              **kw: Any) -> dict[str, Any]:
    kw.setdefault("pattern", f"[{path} = '{value}']")
    return indicator(value, tlp=tlp, created_by_ref=member_identity_id(OWNER), **kw)


def owner_with_set(store: Store, home: Path, objs: list[dict[str, Any]] | None = None,
                   tlp: TLP = TLP.RED) -> Any:
    store.put_many(objs or [protected(), protected(SECRET_DOMAIN, "domain-name:value")],
                   Provenance(OWNER, "import"))
    entries, _ = select_entries(store, OWNER, tlp)
    return publish(store, OWNER, oprf_key(home), entries)


def local_send(home: Path, store: Store, member: str = ALLY, tier: str = "ally",
               limits: Limits | None = None) -> Any:
    ev = Evaluator(home, store, limits)

    def send(epoch: int, body: bytes) -> tuple[int, bytes, str]:
        a = ev(member, tier, epoch, body)
        return a.status, a.body, a.message

    send.evaluator = ev  # type: ignore[attr-defined]
    return send
