"""Policy: members, tiers, sharing groups, TLP rules; who may see and write what.

The names below are loaded on first use (PEP 562): `policy.model` needs no SQLAlchemy,
and every CLI command imports it (its tiers) when the CLI starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shieldwall.policy.members import Members, PolicyError, new_token, token_hash
    from shieldwall.policy.model import TIERS, Collection, Member, member_identity_id
    from shieldwall.policy.rules import (
        HELD_COLUMNS,
        Existing,
        Visibility,
        held_objects,
        may_read,
        may_write,
        speaker_refusal,
        spoken_for,
        version_refusal,
        visibility,
        visible,
        write_refusal,
    )

__all__ = [
    "HELD_COLUMNS",
    "TIERS",
    "Collection",
    "Existing",
    "Member",
    "Members",
    "PolicyError",
    "Visibility",
    "held_objects",
    "may_read",
    "may_write",
    "member_identity_id",
    "new_token",
    "speaker_refusal",
    "spoken_for",
    "token_hash",
    "version_refusal",
    "visibility",
    "visible",
    "write_refusal",
]

_MEMBERS = {"Members", "PolicyError", "new_token", "token_hash"}
_MODEL = {"TIERS", "Collection", "Member", "member_identity_id"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'shieldwall.policy' has no attribute {name!r}")
    module = "members" if name in _MEMBERS else "model" if name in _MODEL else "rules"
    value = getattr(importlib.import_module(f"shieldwall.policy.{module}"), name)
    globals()[name] = value
    return value
