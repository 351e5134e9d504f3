"""Canonical values: one spelling for each value that can be written several legal ways.

An indicator and a log line name the same thing however each writes it. Matching, search,
correlation and the warning lists all compare these forms, so every room asks here:

- **hash** (`*:hashes.<algorithm>`): a value made only of hexadecimal digits is lower-cased
  (`AABB…` is `aabb…`); anything else (SSDEEP, a TLSH with its `T1` prefix) is case-sensitive
  and kept as written.
- **domain** (`domain-name:value`): IDNA 2008 with UTS #46 mapping, non-transitional (the
  `idna` package), so a Unicode name and its punycode are one value, written as the A-label
  (ASCII, as DNS, TLS SNI and HTTP carry it): `Bücher.EXAMPLE` is `xn--bcher-kva.example`.
  Lower case; one trailing dot (the root) removed. A label IDNA refuses (`_dmarc`, an
  unassigned code point) keeps its UTS #46 mapping (lower case) rather than failing.
- **ip** (`ipv4-addr:value`, `ipv6-addr:value`): IPv6 in RFC 5952 form (lower case, the
  longest run of zero groups compressed, no leading zeros); an IPv4-mapped IPv6 address
  (`::ffff:192.0.2.1`) is the IPv4 address it maps. A CIDR keeps its prefix length. IPv4 is
  only ever dotted-quad (`010.1` is not an address and stays as written).
- **host** (`network-traffic:src_ref.value`, `dst_ref.value`, `resolves_to_refs[*].value`):
  an address by the ip rule, anything else by the domain rule.
- **url** (`url:value`): scheme and host lower-cased, the host by the domain rule (an IPv6
  literal in RFC 5952 form); user information, port, path, query and fragment kept as
  written (they can be case-sensitive).
- **email** (`email-addr:value`, an email message's `from_ref` / `sender_ref` / `to_refs` /
  `cc_refs` / `bcc_refs`): the domain by the domain rule, the local part kept as written
  (RFC 5321 leaves its case to the receiving host).

A value that is not of its kind's shape stays as written: canonical forms never fail.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import idna

HASH, DOMAIN, IP, HOST, URL, EMAIL = "hash", "domain", "ip", "host", "url", "email"

_HEX = re.compile(r"[0-9A-Fa-f]+")
_V4 = re.compile(r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                 r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")
_PREFIX = re.compile(r"[0-9]{1,3}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(//)?")


def hash_value(text: str) -> str:
    """A hexadecimal digest in lower case; any other digest (SSDEEP, TLSH `T1…`) as written."""
    return text.lower() if _HEX.fullmatch(text) else text


def domain(text: str) -> str:
    """A domain name as its lower-case A-label form, without the root's trailing dot."""
    if text.isascii():
        out = text.lower()
        return out[:-1] if len(out) > 1 and out.endswith(".") else out
    return _idna_domain(text)


@lru_cache(maxsize=65536)
def _idna_domain(text: str) -> str:
    try:
        mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError):
        mapped = text.lower()
    if len(mapped) > 1 and mapped.endswith("."):
        mapped = mapped[:-1]
    labels = []
    for label in mapped.split("."):
        if not label.isascii():
            with contextlib.suppress(idna.IDNAError, UnicodeError):
                label = idna.alabel(label).decode("ascii")
        labels.append(label)
    return ".".join(labels)


def _ip_or_none(text: str) -> str | None:
    """The canonical address (or CIDR) of `text`, None when it is not one."""
    if _V4.fullmatch(text):
        return text
    addr, slash, prefix = text.partition("/")
    if ":" not in addr:
        if slash and _V4.fullmatch(addr) and _PREFIX.fullmatch(prefix) and int(prefix) <= 32:
            return text if prefix == str(int(prefix)) else f"{addr}/{int(prefix)}"
        return None
    try:
        a = ipaddress.IPv6Address(addr)
    except ValueError:
        return None
    mapped = a.ipv4_mapped
    if not slash:
        return str(mapped) if mapped is not None else a.compressed
    if not _PREFIX.fullmatch(prefix) or int(prefix) > 128:
        return None
    bits = int(prefix)
    if mapped is not None and bits >= 96:
        return f"{mapped}/{bits - 96}"
    return f"{a.compressed}/{bits}"


def ip(text: str) -> str:
    """An address (or CIDR) in canonical form: RFC 5952 IPv6, IPv4-mapped as IPv4."""
    if ":" not in text and "/" not in text:
        return text  # dotted-quad IPv4 is canonical, and anything else stays as written
    out = _ip_or_none(text)
    return text if out is None else out


def host(text: str) -> str:
    """An address by `ip`, anything else by `domain` (which leaves dotted-quad IPv4 as is)."""
    if ":" in text:
        out = _ip_or_none(text)
        if out is not None:
            return out
    return domain(text)


def url(text: str) -> str:
    """Scheme and host lower-cased (the host as a domain, or an RFC 5952 IPv6 literal)."""
    m = _SCHEME.match(text)
    if m is None:
        return text
    scheme = m.group(1).lower()
    rest = text[m.end():]
    if not m.group(2):
        return f"{scheme}:{rest}"
    end = len(rest)
    for stop in "/?#":
        i = rest.find(stop)
        if 0 <= i < end:
            end = i
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    close = hostport.find("]") if hostport.startswith("[") else -1
    if close > 0:
        name, port = hostport[1:close], hostport[close + 1:]
        try:
            name = ipaddress.IPv6Address(name).compressed
        except ValueError:
            name = name.lower()
        hostc = f"[{name}]{port}"
    else:
        name, colon, port = hostport.partition(":")
        hostc = domain(name) + colon + port
    return f"{scheme}://{userinfo}{at}{hostc}{tail}"


def email(text: str) -> str:
    """The local part as written, `@`, the domain by `domain` (an address literal as is)."""
    local, at, dom = text.rpartition("@")
    if not at or dom.startswith("["):
        return text
    return f"{local}@{domain(dom)}"


CANONICAL: dict[str, Callable[[str], str]] = {
    HASH: hash_value, DOMAIN: domain, IP: ip, HOST: host, URL: url, EMAIL: email,
}

_VALUE_KINDS = {"domain-name": DOMAIN, "ipv4-addr": IP, "ipv6-addr": IP, "url": URL,
                "email-addr": EMAIL}
_HOST_REFS = frozenset({"src_ref", "dst_ref", "resolves_to_refs"})
_EMAIL_REFS = frozenset({"from_ref", "sender_ref", "to_refs", "cc_refs", "bcc_refs"})
_SEGMENT = re.compile(r"'[^']*'|[^.]+")


def kind_of_steps(object_type: str, steps: Sequence[Any]) -> str | None:
    """The kind of the values a path selects: `object_type` and its property steps (strings;
    list indexes and `[*]` are ignored), as a pattern's object path holds them."""
    props = [s for s in steps if isinstance(s, str)]
    if len(props) >= 2 and props[-2] == "hashes":
        return HASH
    if not props or props[-1] != "value":
        return None
    if len(props) == 1:
        return _VALUE_KINDS.get(object_type)
    hop = props[-2]
    if hop in _HOST_REFS:
        return HOST
    if hop in _EMAIL_REFS:
        return EMAIL
    return None


@lru_cache(maxsize=4096)
def kind_of(path: str) -> str | None:
    """The kind of a STIX object path as patterns and reader columns write it:
    `file:hashes.'SHA-256'`, `domain-name:resolves_to_refs[*].value`, `url:value`."""
    object_type, colon, rest = path.partition(":")
    if not colon:
        return None
    steps = [s[1:-1] if s.startswith("'") else s.split("[", 1)[0]
             for s in _SEGMENT.findall(rest)]
    return kind_of_steps(object_type, steps)


def canonicalizer(path: str) -> Callable[[str], str] | None:
    """The canonical-form function for a path's values, None when they have none."""
    kind = kind_of(path)
    return CANONICAL[kind] if kind is not None else None


def canonical(path: str, value: Any) -> Any:
    """`value` in canonical form for `path` (non-strings and paths without a rule unchanged)."""
    fn = canonicalizer(path)
    return fn(value) if fn is not None and isinstance(value, str) else value


def like(kind: str, pattern: str) -> str:
    """A STIX LIKE pattern (`%`, `_`) rewritten to match canonical values of `kind`: a
    pattern that is one literal is canonical like a value; otherwise the parts that are case
    insensitive are lower-cased (hashes: when only hex digits and wildcards; domains and
    hosts: label by label, Unicode labels without wildcards as A-labels; URLs: up to the
    host; emails: after the `@`)."""
    if "%" not in pattern and "_" not in pattern:
        return CANONICAL[kind](pattern)
    if kind == HASH:
        return pattern.lower() if re.fullmatch(r"[0-9A-Fa-f%_]+", pattern) else pattern
    if kind in (DOMAIN, HOST):
        if len(pattern) > 1 and pattern.endswith(".") and pattern[-2] not in "%_":
            pattern = pattern[:-1]  # the root's dot, as `domain` drops it
        return ".".join(domain(p) if p and "%" not in p and "_" not in p else p.lower()
                        for p in pattern.split("."))
    if kind == EMAIL:
        local, at, dom = pattern.rpartition("@")
        return f"{local}@{dom.lower()}" if at else pattern
    if kind == URL:
        m = re.match(r"([^:/?#]*://[^/?#]*)", pattern)
        return m.group(1).lower() + pattern[m.end():] if m else pattern
    return pattern


def guess(text: str) -> str:
    """The canonical form of a value whose kind is not known (a search, a warning-list
    string entry): an address, a URL, an email address, a hexadecimal digest, else a name."""
    if _V4.fullmatch(text):
        return text
    if ":" in text:
        out = _ip_or_none(text)
        if out is not None:
            return out
        if _SCHEME.match(text):
            return url(text)
    if "@" in text and " " not in text:
        return email(text)
    if _HEX.fullmatch(text):
        return text.lower()
    return domain(text)


def spellings(text: str) -> list[str]:
    """Ways a stored document may write the value `text` names, canonical form first: a
    name (alone, in an email address or a URL) also with Unicode labels (U-labels), an IPv6
    address also fully expanded and with only its leading zeros dropped. For substring
    search."""
    canon = guess(text.strip())
    out = [canon]
    try:
        a = ipaddress.ip_address(canon)
    except ValueError:
        a = None
    if isinstance(a, ipaddress.IPv6Address):
        out += [a.exploded, ":".join(f"{int(g, 16):x}" for g in a.exploded.split(":"))]
    elif a is None and "xn--" in canon:
        out.append(_ALABEL.sub(_ulabel, canon))
    return list(dict.fromkeys(out))


_ALABEL = re.compile(r"(?<![^./@])xn--[a-z0-9-]+")


def _ulabel(m: re.Match[str]) -> str:
    try:
        return str(idna.ulabel(m.group(0)))
    except (idna.IDNAError, UnicodeError):
        return m.group(0)
