"""The store's shared types: what a caller hands the store and what it gets back.

They live apart from `store.py` so that the SQL builders (`where.py`) and the batch
writer (`write.py`) can name them without importing the Store itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import orjson

from shieldwall.stix.markings import AUDIENCE_ONLY_TYPES, TLP

# The property that holds the state of an object of these types, kept in `objects.status`
# when written: statistics count by state in SQL without reading each row's JSON
# (a case's requests, dispatches and tasks; respond/cases.statistics). Here, not in
# `schema`, so that an import's worker prepares rows without importing SQLAlchemy.
STATUS_PROPERTY = {"x-shieldwall-assistance-request": "status", "x-shieldwall-dispatch": "status",
                   "task": "outcome"}


def audience_key(names: Sequence[str]) -> str | None:
    """The digest of a named audience as a set (SHA-256 of its sorted names as JSON), kept
    in `objects.audience_key` beside a status and in `audience_sets` (migration 0017): rows
    of one key are named to the same members and groups, so counting them under an Access
    tests each reader's names against the few keys, not each row's audience."""
    if not names:
        return None
    return hashlib.sha256(orjson.dumps(sorted(set(names)))).hexdigest()


@dataclass(frozen=True)
class Provenance:
    """Who delivered a version (member or peer), through which channel, into which collection."""

    source: str
    channel: str = "import"
    collection: str | None = None


@dataclass(frozen=True)
class Access:
    """Which stored versions a reader may see, applied in SQL so pages and counts agree.

    A row is visible when its TLP is in `open_levels`; or its TLP is in `named_levels`
    and one of `names` is in its audience; or the reader itself delivered it
    (`source in names`) or created it (`created_by_ref in identities`), unless its type
    is one of `audience_only_types`: for those only the open levels and the audience
    count. The default carries `AUDIENCE_ONLY_TYPES`, so no reader (TAXII, the
    dashboard, `export --for`, federation) has to remember it.
    """

    open_levels: frozenset[int]
    named_levels: frozenset[int] = frozenset()
    names: frozenset[str] = frozenset()
    identities: frozenset[str] = frozenset()
    # Sharing groups (`group:NAME` audience entries) open fewer levels than a member's
    # own name does: TLP:AMBER may go to a group, AMBER+STRICT and RED only to names.
    group_levels: frozenset[int] = frozenset()
    groups: frozenset[str] = frozenset()
    audience_only_types: frozenset[str] = AUDIENCE_ONLY_TYPES


Outcome = Literal["new", "new_version", "history", "duplicate", "conflict", "rejected"]


@dataclass
class ObjectResult:
    id: str
    version: str
    outcome: Outcome
    reason: str = ""


@dataclass
class PutResult:
    """What one put did, by outcome; `details` only when asked (TAXII status needs it)."""

    new: int = 0
    new_versions: int = 0
    history: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    details: list[ObjectResult] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.new + self.new_versions + self.history

    def merge(self, other: PutResult) -> None:
        self.new += other.new
        self.new_versions += other.new_versions
        self.history += other.history
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)
        self.details.extend(other.details)


@dataclass(frozen=True)
class StoredVersion:
    seq: int
    id: str
    type: str
    spec_version: str
    version_us: int
    date_added_us: int
    is_latest: bool
    revoked: bool
    tlp: TLP
    created_by_ref: str | None
    name: str | None
    source: str
    channel: str
    collection: str | None
    json: str

    def obj(self) -> dict[str, Any]:
        return orjson.loads(self.json)


class PageRow(NamedTuple):
    """The part of a stored version a TAXII page needs (see `Store.read_rows`)."""

    seq: int
    id: str
    version_us: int
    date_added_us: int
    json: str
    tlp: int  # the level this node holds it at (see `stix.outbound`)


VersionMode = Literal["last", "first", "all"]


@dataclass
class Query:
    """A read over stored versions. `after_seq` is the keyset cursor of the previous page."""

    types: Sequence[str] | None = None
    ids: Sequence[str] | None = None
    versions: VersionMode | Sequence[int | str] = "last"  # a sequence may mix in first/last
    spec_versions: Sequence[str] | None = None
    added_after_us: int | None = None
    after_seq: int | None = None
    limit: int | None = None
    access: Access | None = None
    collection: str | None = None
    tlp_max: TLP | None = None
    modified_from_us: int | None = None
    modified_to_us: int | None = None
    include_revoked: bool = True
    # Relationships whose source_ref or target_ref is one of these ids (indexed, 0009).
    linked_to: Sequence[str] | None = None


@dataclass
class Page:
    rows: list[StoredVersion]
    more: bool

    @property
    def next_seq(self) -> int | None:
        return self.rows[-1].seq if self.rows else None



def reject(result: PutResult, oid: str, version: str, reason: str, details: bool) -> None:
    result.rejected.append((oid, reason))
    if details:
        result.details.append(ObjectResult(oid, version, "rejected", reason))
