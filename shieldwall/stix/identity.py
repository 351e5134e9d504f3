"""A member's STIX identity, derived from its name alone.

Every node derives the same identity id for a member name, so references such as
`created_by_ref` and `where_sighted_refs` agree across the alliance without a registry.
"""

from __future__ import annotations

from typing import Any

from shieldwall.stix.ids import deterministic_id


def member_identity_id(member: str) -> str:
    """Every node derives the same identity id for a member name, so references agree."""
    return deterministic_id("identity", f"shieldwall-member:{member}")


def member_identity(member: str) -> dict[str, Any]:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": member_identity_id(member),
        "created": "2020-01-01T00:00:00.000Z",
        "modified": "2020-01-01T00:00:00.000Z",
        "name": member,
        "identity_class": "organization",
    }
