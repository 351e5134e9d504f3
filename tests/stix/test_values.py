"""The canonical value rules (shieldwall.stix.values), one case per way of writing a value."""

from __future__ import annotations

import pytest

from shieldwall.stix import values as v

SHA256 = "5d41402abc4b2a76b9719d911017c592" * 2


@pytest.mark.parametrize(("kind", "written", "canonical"), [
    # hashes: hexadecimal digits are case-insensitive, other digests are not
    ("hash", SHA256.upper(), SHA256),
    ("hash", SHA256, SHA256),
    ("hash", "3:AXGBicFlgVNhBGcL6w:AXGHsNhxLsr2C", "3:AXGBicFlgVNhBGcL6w:AXGHsNhxLsr2C"),
    ("hash", "T1A2B3", "T1A2B3"),
    # domains: case, the root's trailing dot, IDNA 2008 / UTS #46
    ("domain", "EVIL.Example.COM", "evil.example.com"),
    ("domain", "evil.example.com.", "evil.example.com"),
    ("domain", "EVIL.example.com.", "evil.example.com"),
    ("domain", "Bücher.example", "xn--bcher-kva.example"),
    ("domain", "BÜCHER.EXAMPLE", "xn--bcher-kva.example"),
    ("domain", "XN--BCHER-KVA.example", "xn--bcher-kva.example"),
    ("domain", "пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("domain", "пример。рф", "xn--e1afmkfd.xn--p1ai"),  # ideographic full stop (UTS #46)
    ("domain", "faß.de", "xn--fa-hia.de"),  # IDNA 2008, non-transitional: ß stays ß
    ("domain", "_dmarc.Example.com", "_dmarc.example.com"),  # not IDNA-valid: kept, folded
    ("domain", ".", "."),
    ("domain", "", ""),
    # addresses: RFC 5952, IPv4-mapped as IPv4, loose IPv4 is not an address
    ("ip", "2001:DB8::1", "2001:db8::1"),
    ("ip", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ("ip", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
    ("ip", "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # one zero group: not compressed
    ("ip", "::FFFF:198.51.100.7", "198.51.100.7"),
    ("ip", "::ffff:c633:6407", "198.51.100.7"),
    ("ip", "198.51.100.7", "198.51.100.7"),
    ("ip", "2001:DB8::/32", "2001:db8::/32"),
    ("ip", "::ffff:198.51.100.0/120", "198.51.100.0/24"),
    ("ip", "10.1", "10.1"),
    ("ip", "010.0.0.1", "010.0.0.1"),
    ("ip", "not an address", "not an address"),
    # hosts (an address column): addresses by the ip rule, names by the domain rule
    ("host", "2001:0DB8::0001", "2001:db8::1"),
    ("host", "::ffff:192.0.2.1", "192.0.2.1"),
    ("host", "CDN.Example.NET.", "cdn.example.net"),
    # URLs: scheme and host case, IDNA host; the rest kept
    ("url", "HTTP://EVIL.Example.com/Path?Q=A", "http://evil.example.com/Path?Q=A"),
    ("url", "https://User:PW@Bücher.Example:8443/X", "https://User:PW@xn--bcher-kva.example:8443/X"),
    ("url", "http://[2001:DB8::1]:80/a", "http://[2001:db8::1]:80/a"),
    ("url", "http://evil.example.com./a", "http://evil.example.com/a"),
    ("url", "MAILTO:Someone@Example.com", "mailto:Someone@Example.com"),
    ("url", "evil.example.com/path", "evil.example.com/path"),
    # email: the domain folds, the local part is kept
    ("email", "Alice.Smith@EXAMPLE.org", "Alice.Smith@example.org"),
    ("email", "ops@Bücher.example.", "ops@xn--bcher-kva.example"),
    ("email", "no-at-sign", "no-at-sign"),
])
def test_rule(kind, written, canonical):
    fn = v.CANONICAL[kind]
    assert fn(written) == canonical
    assert fn(canonical) == canonical  # a canonical form is a fixed point


@pytest.mark.parametrize(("path", "kind"), [
    ("file:hashes.'SHA-256'", "hash"),
    ("file:hashes.MD5", "hash"),
    ("x509-certificate:hashes.'SHA-1'", "hash"),
    ("process:image_ref.hashes.'SHA-256'", "hash"),
    ("domain-name:value", "domain"),
    ("ipv4-addr:value", "ip"),
    ("ipv6-addr:value", "ip"),
    ("network-traffic:dst_ref.value", "host"),
    ("domain-name:resolves_to_refs[*].value", "host"),
    ("domain-name:resolves_to_refs[0].value", "host"),
    ("url:value", "url"),
    ("email-addr:value", "email"),
    ("email-message:from_ref.value", "email"),
    ("email-message:to_refs[*].value", "email"),
    ("file:name", None),
    ("network-traffic:extensions.'http-request-ext'.request_header.'Host'", None),
    ("file:parent_ref.value", None),
    ("not a path", None),
])
def test_kind_of_path(path, kind):
    assert v.kind_of(path) == kind


def test_canonical_dispatches_by_path_and_leaves_other_values():
    assert v.canonical("file:hashes.'SHA-256'", "AB") == "ab"
    assert v.canonical("file:name", "AB") == "AB"
    assert v.canonical("domain-name:value", 5) == 5


@pytest.mark.parametrize(("kind", "pattern", "canonical"), [
    ("domain", "%.EVIL.Example", "%.evil.example"),
    ("domain", "%.EVIL.Example.", "%.evil.example"),
    ("domain", "evil%.", "evil%."),
    ("domain", "%.пример.рф", "%.xn--e1afmkfd.xn--p1ai"),
    ("domain", "EVIL.COM.", "evil.com"),
    ("hash", "AABB%", "aabb%"),
    ("url", "HTTP://EVIL.COM/Admin%", "http://evil.com/Admin%"),
    ("email", "%@EXAMPLE.org", "%@example.org"),
])
def test_like_patterns_meet_canonical_values(kind, pattern, canonical):
    assert v.like(kind, pattern) == canonical


@pytest.mark.parametrize(("written", "forms"), [
    ("2001:DB8::1", ["2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001",
                     "2001:db8:0:0:0:0:0:1"]),
    ("EVIL.example.", ["evil.example"]),
    ("xn--bcher-kva.example", ["xn--bcher-kva.example", "bücher.example"]),
    ("Bücher.example", ["xn--bcher-kva.example", "bücher.example"]),
    ("::ffff:198.51.100.7", ["198.51.100.7"]),
    (SHA256.upper(), [SHA256]),
])
def test_spellings_for_search(written, forms):
    assert v.spellings(written) == forms
