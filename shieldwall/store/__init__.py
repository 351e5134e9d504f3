"""The intel store: every STIX version the node holds, with its provenance and TLP."""

from shieldwall.store.store import Store, StoreError
from shieldwall.store.types import (
    Access,
    ObjectResult,
    Page,
    Provenance,
    PutResult,
    Query,
    StoredVersion,
)

__all__ = [
    "Access",
    "ObjectResult",
    "Page",
    "Provenance",
    "PutResult",
    "Query",
    "Store",
    "StoreError",
    "StoredVersion",
]
