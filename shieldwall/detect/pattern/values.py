"""How pattern literals and observed JSON values compare.

The STIX 2.1 specification (Part 5) fixes most of this; where it is silent we follow the OASIS
reference matcher (stix2-matcher 3.0.0) so that a sighting found here is one the rest of the
field would also find. Deviations are listed in docs/patterns.md.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from dataclasses import replace
from typing import Any

from shieldwall.stix import values as canon

_UTC = _dt.UTC

# Values that the comparison tables below recognise; anything else (lists, dicts, None) is
# "not comparable": `=` is false, `!=` is true, ordering is false.
_NUMBER = (int, float)


def parse_timestamp(text: str) -> _dt.datetime:
    """Parse `YYYY-MM-DDTHH:MM:SS[.fraction]Z` as the reference does; ValueError otherwise.

    Upper-case `T` and `Z` are required, the fraction is cut to microseconds; the result is
    timezone-aware (UTC) so it orders against every other parsed timestamp.
    """
    if any(c.islower() for c in text):
        raise ValueError(f"invalid timestamp (T and Z must be upper case): {text}")
    if "." in text:
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
        head, _, frac = text.partition(".")
        if len(frac) > 7 and frac.endswith("Z"):
            text = f"{head}.{frac[:6]}Z"
    else:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
    return _dt.datetime.strptime(text, fmt).replace(tzinfo=_UTC)


def _as_timestamp(value: Any) -> _dt.datetime | None:
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            return None
    return None


def _latin1(text: str) -> bytes | None:
    """A string as bytes when every code point fits in one byte (the spec's binary rule)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def equal(value: Any, literal: Any) -> bool:
    """The `=` test of one observed value against one pattern literal."""
    lit_t = type(literal)
    if lit_t is str:
        if type(value) is str:
            return value == literal
        if type(value) is bytes:
            return _latin1(literal) == value
        return False
    if lit_t is int or lit_t is float:
        return (type(value) is int or type(value) is float) and value == literal
    if lit_t is bool:
        return type(value) is bool and value == literal
    if lit_t is bytes:
        if type(value) is bytes:
            return value == literal
        if type(value) is str:
            return _latin1(value) == literal
        return False
    if lit_t is _dt.datetime:
        ts = _as_timestamp(value)
        return ts is not None and ts == literal
    return False


def compare(value: Any, literal: Any) -> int | None:
    """-1/0/1 ordering of value against literal, or None when the types do not order.

    Binary against a string with a character beyond U+00FF is the one comparable pair that
    still cannot be ordered: that raises ValueError, because the reference lets NOT turn this
    case (but not a type mismatch) into a match.
    """
    lit_t = type(literal)
    val_t = type(value)
    a: Any
    b: Any
    if lit_t in (int, float):
        if val_t not in (int, float):
            return None
        a, b = value, literal
    elif lit_t is str:
        if val_t is str:
            a, b = value, literal
        elif val_t is bytes:
            a, b = value, _latin1(literal)
            if b is None:
                raise ValueError("string not representable as binary")
        else:
            return None
    elif lit_t is bytes:
        if val_t is bytes:
            a, b = value, literal
        elif val_t is str:
            a, b = _latin1(value), literal
            if a is None:
                raise ValueError("string not representable as binary")
        else:
            return None
    elif lit_t is _dt.datetime:
        a, b = _as_timestamp(value), literal
        if a is None:
            return None
    else:
        return None
    return (a > b) - (a < b)


# -- CIDR --------------------------------------------------------------------------------------

_V4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def parse_network(
    text: str,
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An address or CIDR block as a network (a bare address is a /32 or /128); None if neither.

    Host bits below the prefix are ignored ('10.1.2.3/8' is 10.0.0.0/8), as the reference does.
    """
    if not isinstance(text, str):
        return None
    addr, slash, prefix = text.partition("/")
    if slash and not prefix.isdigit():
        return None
    if ":" not in addr and not _V4.fullmatch(addr):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def network_within(
    inner: ipaddress.IPv4Network | ipaddress.IPv6Network,
    outer: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


# -- canonical forms ---------------------------------------------------------------------------
#
# A hash, a domain, an address, a URL or an email address can be written several legal ways
# (`AABB…` / `aabb…`, `Bücher.example` / `xn--bcher-kva.example`, `2001:DB8::1` /
# `2001:db8:0:0:0:0:0:1`). Where the specification leaves room (it says nothing of case or
# IDNA), `=`, `!=`, `IN`, `LIKE`, `ISSUBSET` and `ISSUPERSET` compare the canonical forms of
# `shieldwall.stix.values`: the literal is put in canonical form once, when the pattern is
# compiled, and each observed string value when it is tested (readers hand over canonical
# telemetry already, so for hunts that second step finds nothing to change). `MATCHES` and the
# ordering operators compare the value as written. docs/patterns.md lists the differences
# from the reference matcher, which compares as written.

_CANONICAL_OPS = frozenset({"=", "!=", "IN", "LIKE", "ISSUBSET", "ISSUPERSET"})


def canonical_comparison(atom: Any) -> tuple[Any, Any] | None:
    """(the atom with its literal in canonical form, the function that puts an observed string
    in that form), or None when the atom compares values as written."""
    if atom.operator not in _CANONICAL_OPS:
        return None
    kind = canon.kind_of_steps(atom.path.object_type, atom.path.steps)
    if kind is None:
        return None
    form = canon.CANONICAL[kind]
    lit = atom.value
    if atom.operator in ("ISSUBSET", "ISSUPERSET"):
        if kind not in (canon.IP, canon.HOST):
            return None
        form = canon.ip
        lit = canon.ip(lit) if type(lit) is str else lit
    elif atom.operator == "LIKE":
        lit = canon.like(kind, lit) if type(lit) is str else lit
    elif atom.operator == "IN":
        lit = tuple(form(x) if type(x) is str else x for x in lit)
    elif type(lit) is str:
        lit = form(lit)
    return replace(atom, value=lit), form
