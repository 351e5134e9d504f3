from __future__ import annotations

import pytest

from shieldwall.ingest import defang as d
from shieldwall.ingest import warninglists as wl
from shieldwall.ingest.ioc_list import pattern_for

# Real MISP lists from pymispwarninglists, a few small ones so the tests stay quick; the full
# set is built the same way by `default_index`.
LISTS = ["public-dns-v4", "public-dns-v6", "amazon-aws", "cisco_top1000", "google",
         "empty-hashes", "disposable-email", "common-contact-emails", "rfc1918", "tlds"]


@pytest.fixture(scope="module")
def index() -> wl.WarningIndex:
    return wl.WarningIndex(wl.load_lists(only=LISTS))


def _names(hits: list[tuple[str, str]]) -> set[str]:
    return {name for name, _ in hits}


def test_public_resolvers(index: wl.WarningIndex) -> None:
    hits = index.check("8.8.8.8")
    assert "List of known IPv4 public DNS resolvers" in _names(hits)
    assert all("8.8.8.8" in why for _, why in hits)
    assert "List of known IPv4 public DNS resolvers" in _names(index.check("1.1.1.1"))
    assert "List of known IPv6 public DNS resolvers" in _names(index.check("2001:4860:4860::8888"))


def test_cidr_member_of_a_cloud_range(index: wl.WarningIndex) -> None:
    # 52.95.245.0/24 is in Amazon's published ranges; the address is inside it, not an entry
    assert "List of known Amazon AWS IP address ranges" in _names(index.check("52.95.245.17"))
    assert "List of RFC 1918 CIDR blocks" in _names(index.check("10.20.30.40"))
    assert "List of RFC 1918 CIDR blocks" in _names(index.check("10.1.0.0/16", d.IPV4_CIDR))
    # 10.0.0.0/7 reaches into 11/8, so RFC 1918 does not cover it
    assert "List of RFC 1918 CIDR blocks" not in _names(index.check("10.0.0.0/7", d.IPV4_CIDR))


def test_domains_and_urls(index: wl.WarningIndex) -> None:
    assert "Top 1000 websites from Cisco Umbrella" in _names(index.check("google.com"))
    assert "Top 1000 websites from Cisco Umbrella" in _names(index.check("GOOGLE.com", d.DOMAIN))
    # hostname lists match subdomains
    assert "List of known google domains" in _names(index.check("mail.google.com"))
    assert "List of known google domains" in _names(index.check("https://www.google.com/x"))
    assert "List of known google domains" in _names(index.check("hxxps://www.google[.]com/x"))


def test_hashes_and_emails(index: wl.WarningIndex) -> None:
    assert "List of known hashes for empty files" in _names(
        index.check("D41D8CD98F00B204E9800998ECF8427E"))
    assert "List of disposable email domains" in _names(index.check("someone@0815.ru"))
    assert "Common contact e-mail addresses" in _names(index.check("abuse@evil-c2.net"))


@pytest.mark.parametrize("value", ["185.220.101.4", "evil-c2-unlisted.net",
                                   "https://evil-c2-unlisted.net/gate.php",
                                   "0749bae92ca336a02c83d126e04ec628", "ops@evil-c2-unlisted.net",
                                   "not an ioc"])
def test_misses(index: wl.WarningIndex, value: str) -> None:
    assert index.check(value) == []


def test_lists_apply_only_to_their_kinds(index: wl.WarningIndex) -> None:
    # `com` is on the IANA TLD list (domains only); as a file name it is not flagged
    assert "TLDs as known by IANA" in _names(index.check("com", d.DOMAIN))
    assert index.check("com", d.FILENAME) == []


def test_check_indicator_reads_simple_patterns(index: wl.WarningIndex) -> None:
    ind = {"type": "indicator", "pattern_type": "stix",
           "pattern": "[ipv4-addr:value = '8.8.8.8'] OR [domain-name:value = 'evil-c2.net']"}
    assert "List of known IPv4 public DNS resolvers" in _names(index.check_indicator(ind))
    cidr = {"type": "indicator", "pattern": pattern_for(d.IPV4_CIDR, "10.0.0.0/8")}
    assert "List of RFC 1918 CIDR blocks" in _names(index.check_indicator(cidr))
    md5 = {"type": "indicator",
           "pattern": "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"}
    assert "List of known hashes for empty files" in _names(index.check_indicator(md5))
    nt = {"type": "indicator", "pattern": "[network-traffic:dst_ref.value = '1.1.1.1' "
                                          "AND network-traffic:dst_port = 53]"}
    assert "List of known IPv4 public DNS resolvers" in _names(index.check_indicator(nt))
    clean = {"type": "indicator", "pattern": "[domain-name:value = 'evil-c2.net']"}
    assert index.check_indicator(clean) == []
    sigma = {"type": "indicator", "pattern_type": "sigma", "pattern": "8.8.8.8"}
    assert index.check_indicator(sigma) == []


def test_pattern_values_unescape() -> None:
    assert wl.pattern_values("[url:value = 'http://x.example/a\\'b\\\\c']") == [
        (d.URL, "http://x.example/a'b\\c")]
    assert wl.pattern_values("[file:hashes.'SHA-256' = 'ab']") == [(d.SHA256, "ab")]


def test_interval_index_matches_overlapping_lists() -> None:
    index = wl.WarningIndex([
        {"name": "wide", "type": "cidr", "list": ["192.0.2.0/24"]},
        {"name": "narrow", "type": "cidr", "list": ["192.0.2.128/25", "198.51.100.7"]},
    ])
    assert _names(index.check("192.0.2.1")) == {"wide"}
    assert _names(index.check("192.0.2.200")) == {"wide", "narrow"}
    assert _names(index.check("192.0.2.128/26", d.IPV4_CIDR)) == {"wide", "narrow"}
    assert _names(index.check("192.0.2.0/24", d.IPV4_CIDR)) == {"wide"}
    assert _names(index.check("198.51.100.7")) == {"narrow"}
    assert index.check("198.51.100.8") == []
    assert index.check("192.0.3.0") == []


@pytest.mark.parametrize("url", [
    "http://bad2.example.org/payload/2.bin", "HTTPS://WWW.Example.COM:8443?q=1", "ftp://1.2.3.4#x",
    "http://user:pw@host.example/", "http://[2001:db8::1]:80/", "http://exa\tmple.com/",
    " http://example.com/", "http://:80/", "http://example.com:/", "http://ex_ample.com/",
    "a+b.c-d://h.o.s.t", "mailto:someone@example.com", "http://bücher.example/",
])
def test_url_host_reads_what_urlsplit_reads(url: str) -> None:
    from urllib.parse import urlsplit

    from shieldwall.stix import values as canon

    try:
        expected = canon.host(urlsplit(url).hostname or "")
    except ValueError:
        expected = ""
    assert wl._url_host(url) == expected
