"""Deterministic ids: the same UUIDv5 as the standard library, computed without its objects."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from shieldwall.stix.ids import SCO_NAMESPACE, deterministic_id, valid_id


@given(st.text(st.characters(exclude_categories=["Cs"])), st.sampled_from(
    ["ipv4-addr", "domain-name", "observed-data", "x-shieldwall-blind-set"]))
def test_deterministic_id_is_uuid5(key: str, stix_type: str) -> None:
    made = deterministic_id(stix_type, key)
    assert made == f"{stix_type}--{uuid.uuid5(SCO_NAMESPACE, key)}"
    assert valid_id(made)
    assert uuid.UUID(made.split("--", 1)[1]).version == 5


def test_deterministic_id_matches_the_stix2_library() -> None:
    """The OASIS `stix2` library's id for an SCO: UUIDv5 of its canonical JSON."""
    import stix2

    sco = stix2.IPv4Address(value="198.51.100.3")
    assert deterministic_id("ipv4-addr", '{"value":"198.51.100.3"}') == sco.id
