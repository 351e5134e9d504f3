"""The intel store: every STIX version the node holds, with its provenance and TLP."""

from shieldwall.store.store import (
    Access,
    ObjectResult,
    Page,
    Provenance,
    PutResult,
    Query,
    Store,
    StoredVersion,
    StoreError,
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
