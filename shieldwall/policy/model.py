"""Who a caller is, as policy sees it: a member, its tier, its sharing groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from shieldwall.stix.ids import deterministic_id

TIERS = ("ally", "partner", "organisation")


@lru_cache(maxsize=4096)
def member_identity_id(name: str) -> str:
    """The identity id every node derives for a member (the same as `shieldwall.node`).

    Derived here rather than imported because policy sits below the node in the house;
    a test keeps the two derivations equal.
    """
    return deterministic_id("identity", f"shieldwall-member:{name}")


@dataclass(frozen=True)
class Member:
    name: str
    tier: str
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def identity_id(self) -> str:
        return member_identity_id(self.name)

    @property
    def audience_names(self) -> frozenset[str]:
        """How a producer may name this member in `x_shieldwall_audience`."""
        return frozenset({self.name})

    @property
    def group_names(self) -> frozenset[str]:
        return frozenset(f"group:{g}" for g in self.groups)


@dataclass(frozen=True)
class Collection:
    id: str
    alias: str
    title: str
    description: str
    scope: str  # "all" or "own"
    read_rule: str
    write_rule: str
