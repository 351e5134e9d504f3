"""Small builders of valid STIX objects for tests."""

from __future__ import annotations

import uuid
from typing import Any

from shieldwall.stix.markings import TLP, tlp_marking_ref


def indicator(
    value: str = "198.51.100.7",
    *,
    modified: str = "2024-01-01T00:00:00.000Z",
    tlp: TLP | None = TLP.GREEN,
    oid: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": oid or f"indicator--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": modified,
        "pattern": f"[ipv4-addr:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
    }
    if tlp is not None:
        obj["object_marking_refs"] = [tlp_marking_ref(tlp)]
    obj.update(extra)
    return obj


def sid(stix_type: str, digit: str = "1") -> str:
    """A fixed, valid id for a type: readable in assertions."""
    d = digit
    return f"{stix_type}--{d * 8}-{d * 4}-4{d * 3}-8{d * 3}-{d * 12}"
