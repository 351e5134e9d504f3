"""Readers write values in canonical form, column by column (`readers.base.canonical_column`)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from shieldwall.detect.readers.base import canonical_column
from shieldwall.stix import values

SHA = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"

COLUMNS = {
    "network-traffic:dst_ref.value": ["192.0.2.1", "2001:0DB8:0:0:0:0:0:1", None, "CDN.Example.",
                                      "Bücher.example", "::ffff:192.0.2.7", "", "10.1"],
    "ipv6-addr:value": ["2001:DB8::1", "::FFFF:192.0.2.1", "not an address", None],
    "domain-name:value": ["evil.example", "EVIL.example.", "xn--bcher-kva.example",
                          "BÜCHER.example", None, "_dmarc.Example.org"],
    "file:hashes.'SHA-256'": [SHA.upper(), SHA, None],
    "file:hashes.SSDEEP": ["3:AbC:dEf", None],
    "url:value": ["http://evil.example/Gate", "HTTP://EVIL.example/Gate", None,
                  "http://evil.example./a", "http://[2001:DB8::1]:80/x", "https://Bücher.example/Ä",
                  "http://u:PW@Evil.example/"],
    "email-message:from_ref.value": ["Ops@EVIL.example", "ops@evil.example.", None,
                                     "x@bücher.example", "no-at"],
    "file:name": ["Report.PDF", None],
}


@pytest.mark.parametrize("path", list(COLUMNS))
def test_each_value_is_written_as_stix_values_writes_it(path: str) -> None:
    written = COLUMNS[path]
    got = canonical_column(path, pa.array(written, pa.string())).to_pylist()
    assert got == [None if v is None else values.canonical(path, v) for v in written]


def test_a_canonical_column_comes_back_unchanged_and_slices_and_lists_are_kept() -> None:
    col = pa.array(["192.0.2.1", "198.51.100.7", None] * 1000, pa.string())
    assert canonical_column("network-traffic:src_ref.value", col) is col
    sliced = pa.array(["A.example", "B.example.", "c.example"]).slice(1)
    assert canonical_column("domain-name:value", sliced).to_pylist() == ["b.example",
                                                                         "c.example"]
    answers = pa.array([["192.0.2.1", "CDN.Example."], None, [], ["2001:DB8::1"]],
                       pa.list_(pa.string()))
    assert canonical_column("domain-name:resolves_to_refs[*].value", answers).to_pylist() == [
        ["192.0.2.1", "cdn.example"], None, [], ["2001:db8::1"]]
    chunked = pa.chunked_array([["EVIL.example"], ["good.example."]])
    assert canonical_column("domain-name:value", chunked).to_pylist() == ["evil.example",
                                                                          "good.example"]
