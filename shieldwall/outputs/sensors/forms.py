"""What a STIX pattern means to a sensor: one value of a kind a sensor matches, one flow, or
the reason it has no faithful sensor form.

Sensors match values (Zeek's Intel framework, Suricata datasets, a resolver's RPZ) and simple
flows (a Suricata rule header). A pattern is exported only when a sensor's match means
exactly what the pattern means: `[domain-name:value = 'x.example']` is the name x.example,
`[domain-name:value LIKE '%.x.example']` every name below it, an AND of network-traffic
equalities one flow. Anything else (OR, NOT, MATCHES, several observations, qualifiers) is
skipped with its reason, never approximated.

The common shape `[path = 'literal']` is read by one regular expression (~2 us); only the
others go through the field's pattern parser (`stix2.pattern_visitor`, ~0.2 ms a pattern).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shieldwall.stix import values as canon

IP, CIDR, DOMAIN, SUFFIX, URL, EMAIL = "ip", "cidr", "domain", "domain-suffix", "url", "email"
MD5, SHA1, SHA256, CERT_SHA1 = "md5", "sha1", "sha256", "cert-sha1"
KINDS = (IP, CIDR, DOMAIN, SUFFIX, URL, EMAIL, MD5, SHA1, SHA256, CERT_SHA1)

MAX_VALUE = 2048  # longer values are skipped: no sensor list holds them usefully

_SIMPLE = re.compile(r"^\[\s*(?P<path>[a-z][a-z0-9-]*:[A-Za-z0-9_.'\-]+)\s*"
                     r"(?P<op>=|LIKE |ISSUBSET )\s*'(?P<lit>[^'\\]*(?:\\['\\][^'\\]*)*)'\s*\]$")
_V4 = re.compile(r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                 r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")
_HASHES = {"md5": MD5, "sha-1": SHA1, "sha1": SHA1, "sha-256": SHA256, "sha256": SHA256}
_HASH_LEN = {MD5: 32, SHA1: 40, SHA256: 64, CERT_SHA1: 40}
_HEX = re.compile(r"[0-9a-f]+")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")  # labels end at dots: no backtracking
_PROTOCOLS = frozenset({"tcp", "udp", "icmp", "sctp", "http", "tls", "dns", "ssh", "smtp",
                        "ftp", "smb"})


@dataclass(frozen=True, slots=True)
class Value:
    """One value of `kind` (see KINDS), in canonical form."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Flow:
    """An AND of network-traffic equalities: what one Suricata rule header says."""

    src: str | None = None
    dst: str | None = None
    src_port: int | None = None
    dst_port: int | None = None
    protocol: str | None = None


Form = Value | Flow


class NoForm(Exception):
    """The pattern has no faithful sensor form; the message says why."""


def form_of(pattern: str) -> Form:
    """The sensor form of a STIX pattern; raises NoForm with the reason."""
    m = _SIMPLE.match(pattern)
    if m is None:
        return _parsed(pattern)
    lit = m.group("lit")
    if "\\" in lit:
        lit = lit.replace("\\'", "'").replace("\\\\", "\\")
    op, path = m.group("op").strip(), m.group("path")
    if op == "=":
        direct = _DIRECT.get(path)
        if direct is not None and len(lit) <= MAX_VALUE:
            return direct(lit)
        return _equality(path, lit)
    if op == "LIKE" and path == "domain-name:value":
        return _suffix(lit)
    if op == "ISSUBSET" and path in ("ipv4-addr:value", "ipv6-addr:value"):
        return _address(lit)
    return _parsed(pattern)


def _equality(path: str, lit: Any) -> Form:
    obj, _, rest = path.partition(":")
    steps = [s.strip("'") for s in rest.split(".")]
    if not isinstance(lit, str):
        if obj == "network-traffic" and steps in (["src_port"], ["dst_port"]):
            raise NoForm("a port alone is not an indicator a sensor can hold")
        raise NoForm(f"{path}: a non-text value has no sensor form")
    if len(lit) > MAX_VALUE:
        raise NoForm(f"value longer than {MAX_VALUE} characters")
    if obj in ("ipv4-addr", "ipv6-addr") and steps == ["value"]:
        return _address(lit)
    if obj == "domain-name" and steps == ["value"]:
        return Value(DOMAIN, _domain(lit))
    if obj == "url" and steps == ["value"]:
        return Value(URL, _url(lit))
    if obj == "email-addr" and steps == ["value"]:
        return Value(EMAIL, _email(lit))
    if obj in ("file", "artifact") and len(steps) == 2 and steps[0] == "hashes":
        kind = _HASHES.get(steps[1].lower())
        if kind is None:
            raise NoForm(f"{steps[1]} hashes: no sensor matches them")
        return Value(kind, _hash(kind, lit))
    if obj == "x509-certificate" and len(steps) == 2 and steps[0] == "hashes":
        if _HASHES.get(steps[1].lower()) != SHA1:
            raise NoForm("certificate hashes other than SHA-1: sensors fingerprint with SHA-1")
        return Value(CERT_SHA1, _hash(CERT_SHA1, lit))
    if obj == "network-traffic" and steps in (["src_ref", "value"], ["dst_ref", "value"]):
        return _flow([(steps[0], lit)])
    raise NoForm(f"{path}: no sensor form for this property")


def _hashed(kind: str) -> Any:
    return lambda lit: Value(kind, _hash(kind, lit))


# The paths most indicators use, each straight to its check (what `_equality` would find).
_DIRECT: dict[str, Any] = {
    "ipv4-addr:value": lambda lit: _address(lit),
    "ipv6-addr:value": lambda lit: _address(lit),
    "domain-name:value": lambda lit: Value(DOMAIN, _domain(lit)),
    "url:value": lambda lit: Value(URL, _url(lit)),
    "email-addr:value": lambda lit: Value(EMAIL, _email(lit)),
    **{f"file:hashes.{name}": _hashed(kind) for kind, names in (
        (MD5, ("MD5", "'MD5'")), (SHA1, ("'SHA-1'", "SHA1")),
        (SHA256, ("'SHA-256'", "SHA256"))) for name in names},
}


def _address(text: str) -> Value:
    if _V4.fullmatch(text):  # the common case, without `ipaddress` (~1 us against ~10 us)
        return Value(IP, text)
    value = canon.ip(text)
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise NoForm(f"not an address or network: {text[:80]!r}") from None
    if net.num_addresses == 1:
        return Value(IP, str(net.network_address))
    return Value(CIDR, str(net))


def _domain(text: str) -> str:
    value = canon.domain(text)
    if len(value) > 253 or not _NAME.fullmatch(value):
        raise NoForm(f"not a DNS name (letters, digits, '-', '_' per label): {text[:80]!r}")
    return value


def _url(text: str) -> str:
    value = canon.url(text)
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise NoForm("only http and https URLs reach a sensor")
    if not rest.isprintable() or not rest.isascii() or " " in rest:
        raise NoForm("URL with spaces, control or non-ASCII characters (not as sent on the "
                      "wire)")
    host, slash, _path = rest.partition("/")
    if "@" in host:
        raise NoForm("URL with user information: sensors log the host without it")
    if "#" in rest:
        raise NoForm("URL with a fragment: never sent on the wire")
    return value if slash else value + "/"  # an empty http path is "/" (RFC 3986 6.2.3)


def _email(text: str) -> str:
    value = canon.email(text)
    local, at, dom = value.rpartition("@")
    if not at or not local or not value.isprintable() or not value.isascii() or any(
            c in value for c in " \t,;<>\"\\"):
        raise NoForm(f"not an email address a sensor logs: {text[:80]!r}")
    _domain(dom)
    return value


def _hash(kind: str, text: str) -> str:
    value = text.lower()
    if len(value) != _HASH_LEN[kind] or not _HEX.fullmatch(value):
        raise NoForm(f"not a {kind} digest: {text[:80]!r}")
    return value


def _flow(parts: list[tuple[str, Any]]) -> Flow:
    f: dict[str, Any] = {}
    for prop, value in parts:
        key = {"src_ref": "src", "dst_ref": "dst", "src_port": "src_port",
               "dst_port": "dst_port", "protocols": "protocol"}[prop]
        if key in f:
            raise NoForm(f"network-traffic:{prop} compared twice: no one rule says both")
        if key in ("src", "dst"):
            f[key] = str(_address(value).value)
        elif key == "protocol":
            proto = str(value).lower()
            if proto not in _PROTOCOLS:
                raise NoForm(f"protocol {str(value)[:40]!r}: no Suricata rule protocol")
            f[key] = proto
        else:
            if not isinstance(value, int) or not 0 <= value <= 65535:
                raise NoForm(f"{prop}: not a port number")
            f[key] = value
    if ("src_port" in f or "dst_port" in f) and f.get("protocol") in (None, "icmp"):
        raise NoForm("a port without a tcp/udp protocol has no one-rule form")
    return Flow(**f)


@lru_cache(maxsize=4096)
def _parsed(pattern: str) -> Form:
    """Patterns beyond `[path = 'literal']`, through the field's parser."""
    try:
        from stix2.pattern_visitor import create_pattern_object

        tree = create_pattern_object(pattern, version="2.1")
    except Exception as exc:  # the parser raises its own types for each error
        raise NoForm(f"pattern does not parse: {str(exc)[:120]}") from None
    from stix2 import patterns as p

    if not isinstance(tree, p.ObservationExpression):
        raise NoForm("several observations or a qualifier: no sensor matches across events")
    expr = tree.operand
    if isinstance(expr, p.LikeComparisonExpression):
        return _like(expr)
    if isinstance(expr, p.IsSubsetComparisonExpression) and not expr.negated:
        path, value = _side(expr)
        if path in ("ipv4-addr:value", "ipv6-addr:value") and isinstance(value, str):
            return _address(value)
        raise NoForm(f"ISSUBSET on {path}: no sensor form")
    if isinstance(expr, p.EqualityComparisonExpression) and not expr.negated:
        path, value = _side(expr)
        return _equality(path, value)
    if isinstance(expr, p.AndBooleanExpression):
        parts = []
        for op in expr.operands:
            if not isinstance(op, p.EqualityComparisonExpression) or op.negated:
                raise NoForm("AND of comparisons other than '=': no one rule says it")
            path, value = _side(op)
            obj, _, prop = path.partition(":")
            prop = prop.split(".")[0].removesuffix("[*]")
            if obj != "network-traffic" or prop not in ("src_ref", "dst_ref", "src_port",
                                                        "dst_port", "protocols"):
                raise NoForm("AND beyond one flow's addresses, ports and protocol")
            parts.append((prop, value))
        return _flow(parts)
    kind = type(expr).__name__.removesuffix("Expression")
    raise NoForm(f"{kind}: no faithful sensor form")


def _side(expr: Any) -> tuple[str, Any]:
    lhs = expr.lhs
    steps = []
    for comp in lhs.property_path:
        name = comp.property_name
        steps.append(f"{name}[*]" if getattr(comp, "index", None) == "*" else str(name))
    value = expr.rhs.value
    if type(expr.rhs).__name__ == "HashConstant" or isinstance(value, str):
        value = str(value)
    path = f"{lhs.object_type_name}:" + ".".join(
        f"'{s}'" if "-" in s and not s.endswith("[*]") else s for s in steps)
    return path.replace("protocols[*]", "protocols"), value


def _like(expr: Any) -> Form:
    path, value = _side(expr)
    if expr.negated or path != "domain-name:value" or not isinstance(value, str):
        raise NoForm("LIKE: sensors hold only domain suffixes ('%.example.org')")
    return _suffix(value)


def _suffix(value: str) -> Value:
    suffix = value.removeprefix("%.")
    if suffix == value or "%" in suffix or "_" in suffix:
        raise NoForm("LIKE: only a leading '%.' (every name below a domain) has a sensor form")
    return Value(SUFFIX, _domain(suffix))
