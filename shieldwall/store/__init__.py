"""The intel store: every STIX version the node holds, with its provenance and TLP.

The names below are loaded on first use (PEP 562): `shieldwall.store.prepare` and
`shieldwall.store.types` need no SQLAlchemy, so an import's worker, forked before the
command opens its node, prepares rows without paying ~0.15 s to import it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {"Store": "store", "StoreError": "store", "Access": "types", "ObjectResult": "types",
          "Page": "types", "Provenance": "types", "PutResult": "types", "Query": "types",
          "StoredVersion": "types"}

__all__ = ["Access", "ObjectResult", "Page", "Provenance", "PutResult", "Query", "Store",
           "StoreError", "StoredVersion"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'shieldwall.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"shieldwall.store.{module}"), name)
    globals()[name] = value
    return value
