"""The `Access` a member reads under: the policy decision (`rules.visibility`) in the form
the store applies in SQL.

Here, not in the TAXII app, so that every reader computes it the same way without
importing a web framework: the TAXII server, the dashboard, and the commands that read
as a member (`case`, `sensors export --for`, `export --for`, outputs), which paid ~0.6 s
of FastAPI imports for it."""

from __future__ import annotations

from shieldwall.policy.model import Member
from shieldwall.policy.rules import visibility
from shieldwall.store.types import Access


def access_for(member: Member) -> Access:
    """The policy decision for `member`, in the form the store applies in SQL."""
    v = visibility(member)
    return Access(
        open_levels=frozenset(int(t) for t in v.open_levels),
        named_levels=frozenset(int(t) for t in v.named_levels),
        names=v.names,
        identities=v.identities,
        group_levels=frozenset(int(t) for t in v.group_levels),
        groups=v.groups,
    )
