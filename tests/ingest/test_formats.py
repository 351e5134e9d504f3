"""Sniffing order is the declared order, not the order importers were imported in."""

from __future__ import annotations

from shieldwall.ingest import base
from shieldwall.ingest.base import formats
from shieldwall.ingest.formats import MODULES


def test_sniffing_order_follows_declared_priority_even_if_stix_registered_first() -> None:
    known = formats()
    saved = dict(base._REGISTRY)
    try:
        # As if the STIX reader had been imported (and registered) before the others.
        base._REGISTRY.clear()
        base._REGISTRY["stix"] = saved["stix"]
        base._REGISTRY.update({k: v for k, v in saved.items() if k != "stix"})
        order = list(dict.fromkeys(f.read.__module__ for f in formats().values()))
    finally:
        base._REGISTRY.clear()
        base._REGISTRY.update(saved)
    assert order == [m for m in MODULES if m in order]
    assert order.index("shieldwall.ingest.vulns") < order.index("shieldwall.ingest.stix_bundle")
    assert list(known)[-1] == "text"  # the fallback sniffs last
