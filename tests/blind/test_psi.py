"""CIRCL Private Search Set export and import (poppy-v2 Bloom filter, HMAC-SHA-256)."""

from __future__ import annotations

import json

import pytest

from shieldwall.blind.psi import BLOOM, META, PssError, export_pss, import_pss

KEY = b"group key of the amber sharing group"


def test_round_trip_with_the_group_key(tmp_path):
    n = export_pss(tmp_path, KEY, [("ipv4-addr:value", "203.0.113.77"),
                                   ("domain-name:value", "xn--bcher-kva.example")],
                   name="t", description="test")
    assert n == 2
    meta = json.loads((tmp_path / META).read_text())
    assert meta["bloomfilter"]["format"] == "poppy-v2" and meta["algorithm"] == "HMAC-SHA-256"
    assert "only against outsiders" in meta["description"]
    assert b"203.0.113.77" not in (tmp_path / BLOOM).read_bytes()
    pss = import_pss(tmp_path, KEY)
    assert pss.contains("203.0.113.77") and pss.contains("Bücher.EXAMPLE")
    assert not pss.contains("203.0.113.78")
    # without the key the filter says nothing
    assert not import_pss(tmp_path, b"another key of sixteen bytes").contains("203.0.113.77")


def test_foreign_algorithm_is_refused(tmp_path):
    export_pss(tmp_path, KEY, [("ipv4-addr:value", "203.0.113.77")], name="t", description="d")
    meta = json.loads((tmp_path / META).read_text()) | {"algorithm": "Blake2"}
    (tmp_path / META).write_text(json.dumps(meta))
    with pytest.raises(PssError, match="Blake2"):
        import_pss(tmp_path, KEY)
