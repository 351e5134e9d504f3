"""The one seam between the index and exact STIX pattern semantics.

The index only finds candidates; whether a candidate matches is decided here, by the exact
evaluator: `shieldwall.detect.matches` when the pattern engine provides it, else the OASIS
reference matcher (`stix2matcher`). Atom extraction (the comparisons a pattern is made of, and
how AND / OR / observation operators combine them) reads the OASIS `stix2` pattern AST, which
is built on the `stix2-patterns` grammar. Everything else in `detect` goes through this module,
so moving to the pattern engine's `compile_pattern` changes this file only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from shieldwall.stix import values as canon

_Matcher = Callable[[str, list[dict[str, Any]]], bool]


@lru_cache(maxsize=1)
def _matcher() -> _Matcher:
    try:
        from shieldwall.detect import matches  # the pattern engine, when it has landed

        return matches  # type: ignore[no-any-return]
    except ImportError:
        from stix2matcher.matcher import match

        def reference(pattern: str, observed: list[dict[str, Any]]) -> bool:
            return bool(match(pattern, observed, stix_version="2.1"))

        return reference


def matches(pattern: str, observed_data: list[dict[str, Any]]) -> bool:
    """Exact evaluation; an evaluator failure on one candidate is a non-match, never a crash."""
    try:
        return _matcher()(pattern, observed_data)
    except Exception:
        return False


def evaluator_name() -> str:
    return getattr(_matcher(), "__module__", "?")


def refusal(pattern: str, multi: bool) -> str | None:
    """Why the exact evaluator would refuse a pattern (docs/patterns.md, "Cost"), or None.

    Refused patterns never match, so the index rejects them with this reason instead of
    filing them. Any pattern is checked for length (no parse); a multi-observation one is
    compiled, which checks its nesting and how far its REPEATS unroll.
    """
    try:
        from shieldwall.detect.pattern import compile_pattern
        from shieldwall.detect.pattern.parse import MAX_PATTERN_LENGTH
    except ImportError:  # the reference matcher has no such limits
        return None
    if len(pattern) > MAX_PATTERN_LENGTH:
        return (f"{len(pattern):,} characters, more than the {MAX_PATTERN_LENGTH:,} a pattern "
                f"may have")
    if multi:
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            return str(exc)
    return None


# ---- atoms -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Atom:
    """One comparison the index can look up: `path op value`. `values` are in the canonical
    form of the path's kind (`stix.values`: a hash in lower case, a domain as its A-label…),
    as readers write telemetry; `text` is the comparison as written in the pattern."""

    path: str
    op: str  # "=", "IN", "ISSUBSET", "LIKE", "MATCHES"
    values: tuple[str, ...]
    text: str


def _atom(path: str, op: str, values: tuple[str, ...], text: str) -> Atom:
    """An atom with its values in canonical form (`MATCHES` expressions as written)."""
    kind = canon.kind_of(path)
    if kind is not None and op != "MATCHES":
        if op == "LIKE":
            values = tuple(canon.like(kind, v) for v in values)
        elif op == "ISSUBSET":
            values = tuple(canon.ip(v) for v in values)
        else:
            form = canon.CANONICAL[kind]
            values = tuple(form(v) for v in values)
    return Atom(path, op, values, text)


@dataclass
class Triggers:
    """A set of atoms such that any match of the pattern makes at least one of them true.

    `multi` is set when the pattern needs several observations (observation AND, FOLLOWEDBY,
    REPEATS, WITHIN): such patterns are evaluated on all candidate observations together.
    """

    atoms: list[Atom] = field(default_factory=list)
    multi: bool = False
    # One observation, an OR of `=` / `IN` string comparisons: a candidate whose value equals
    # the literal *is* a match (see `direct_match`), so the evaluator is not called for it.
    direct: bool = False


class Unindexable(ValueError):
    """The pattern parsed but has no atom the index can look up; the message says why."""


_RANK = {"=": 0, "IN": 1, "LIKE": 2, "ISSUBSET": 3, "MATCHES": 4}


def _path(lhs: Any) -> str:
    return str(lhs)


_ESCAPE = re.compile(r"\\(.)")


def _unescape(text: str) -> str:
    """The `stix2` AST keeps a string literal's escapes (`\\\\`, `\\'`); the index wants values."""
    return _ESCAPE.sub(r"\1", text)


def _comparison(c: Any) -> list[Atom] | None:
    from stix2 import patterns as P

    if c.negated:
        return None
    path = _path(c.lhs)
    op = c.operator
    text = str(c)
    if isinstance(c, P.InComparisonExpression):
        vals = tuple(_unescape(str(v.value)) for v in c.rhs.value)
        return [_atom(path, "IN", vals, text)] if all(
            isinstance(v, P.StringConstant) for v in c.rhs.value) else None
    if not isinstance(c.rhs, P.StringConstant):
        return None
    value = _unescape(str(c.rhs.value))
    if op in ("=", "ISSUBSET", "LIKE", "MATCHES"):
        return [_atom(path, op, (value,), text)]
    return None


def _walk(node: Any) -> Triggers | None:
    from stix2 import patterns as P

    if isinstance(node, P.ParentheticalExpression):
        return _walk(node.expression)
    if isinstance(node, P.ObservationExpression):
        return _walk(node.operand)
    if isinstance(node, P._ComparisonExpression):
        atoms = _comparison(node)
        return Triggers(atoms) if atoms else None
    if isinstance(node, P.AndBooleanExpression):
        options = [t for t in (_walk(o) for o in node.operands) if t is not None]
        if not options:
            return None
        return min(options, key=lambda t: (max(_RANK[a.op] for a in t.atoms), len(t.atoms)))
    if isinstance(node, P.OrBooleanExpression | P.OrObservationExpression):
        parts = [_walk(o) for o in node.operands]
        if any(p is None for p in parts):
            return None
        return Triggers([a for p in parts if p for a in p.atoms],
                        any(p.multi for p in parts if p))
    if isinstance(node, P.AndObservationExpression | P.FollowedByObservationExpression):
        parts = [_walk(o) for o in node.operands]
        if any(p is None for p in parts):
            return None
        return Triggers([a for p in parts if p for a in p.atoms], True)
    if isinstance(node, P.QualifiedObservationExpression):
        inner = _walk(node.observation_expression)
        if inner is None:
            return None
        return Triggers(inner.atoms, True)
    return None


# ---- the fast compile path ---------------------------------------------------------------
#
# Feeds are mostly `[type:path = 'literal']`, OR chains of those, `IN (...)`, `ISSUBSET 'cidr'`
# and `LIKE '%.suffix'`. The ANTLR grammar costs 1.6-3 ms per pattern (25 min at 1M indicators);
# this strict expression reads those shapes in ~10 us and hands everything else to the grammar.
# The identifier rules are the grammar's own (IdentifierWithoutHyphen / WithHyphen), and a
# quoted key is rendered as the `stix2` AST renders it (quoted only when it holds a hyphen), so
# both paths yield identical atoms (tests/detect/test_fast_compile.py checks that).

_LIT = r"'(?:[^'\\]|\\['\\])*'"
_FPATH = (r"[a-z][a-z0-9-]*:[A-Za-z_][A-Za-z0-9_]*"
          r"(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|'[A-Za-z0-9_-]+'))*")
_FCMP = (rf"({_FPATH}) (?:(=|ISSUBSET|LIKE) ({_LIT})"
         rf"|IN \(((?:{_LIT})(?:, ?{_LIT})*)\))")
_FAST = re.compile(rf"\[{_FCMP}(?: OR {_FCMP})*\]")
_FAST_ONE = re.compile(_FCMP)
# `[a = 'x' AND b = 443 OR c = 'y']`: comparisons joined by AND and OR, where some compare a
# path with an integer (not indexable, evaluated on the candidate). AND binds tighter than OR.
_FNUM = rf"{_FPATH} (?:=|!=|<=|>=|<|>) (?:0|[1-9][0-9]*)"
_FANY = rf"(?:{_FCMP}|{_FNUM})"
_FAST_AND = re.compile(rf"\[{_FANY}(?: (?:AND|OR) {_FANY})*\]")
_FAST_TERM = re.compile(rf" ?(AND|OR)? ?(?:{_FCMP}|({_FPATH}) (?:=|!=|<=|>=|<|>) [0-9]+)")
_FAST_LIT = re.compile(_LIT)
_QUOTED_KEY = re.compile(r"'([A-Za-z0-9_-]+)'")


def _fast_path(path: str) -> str:
    return _QUOTED_KEY.sub(lambda m: m.group(0) if "-" in m.group(1) else m.group(1), path)


def _fast_atom(path: str, op: str | None, raw: str, in_list: str | None) -> Atom:
    path = _fast_path(path)
    if op:
        return _atom(path, op, (_unescape(raw[1:-1]),), f"{path} {op} {raw}")
    raws = _FAST_LIT.findall(in_list or "")
    return _atom(path, "IN", tuple(_unescape(r[1:-1]) for r in raws),
                 f"{path} IN ({', '.join(raws)})")


def _fast_triggers(pattern: str) -> Triggers | None:
    """Atoms of a simple pattern read without the grammar; None when the shape is not simple."""
    if _FAST.fullmatch(pattern):
        atoms = [_fast_atom(m.group(1), m.group(2), m.group(3), m.group(4))
                 for m in _FAST_ONE.finditer(pattern, 1)]
        return Triggers(atoms, False, all(_direct_atom(a) for a in atoms))
    if not _FAST_AND.fullmatch(pattern):
        return None
    # OR of AND-groups; per group the atom the grammar path would pick (`_walk`: the lowest
    # rank, the first of equals). Comparisons ANDed must name one object type, as the grammar
    # checks; anything else is left to it.
    groups: list[list[tuple[str, Atom | None]]] = [[]]
    for m in _FAST_TERM.finditer(pattern, 1, len(pattern) - 1):
        if m.group(1) == "OR":
            groups.append([])
        if m.group(6):
            groups[-1].append((m.group(6).partition(":")[0], None))
        else:
            groups[-1].append((m.group(2).partition(":")[0],
                               _fast_atom(m.group(2), m.group(3), m.group(4), m.group(5))))
    atoms = []
    for group in groups:
        if len({t for t, _ in group}) > 1:
            return None
        indexable = [a for _, a in group if a is not None]
        if not indexable:
            return None
        atoms.append(min(indexable, key=lambda a: _RANK[a.op]))
    direct = all(len(g) == 1 for g in groups) and all(_direct_atom(a) for a in atoms)
    return Triggers(atoms, False, direct)


_ADDRESS_PATHS = ("ipv4-addr:value", "ipv6-addr:value")


def _direct_atom(atom: Atom) -> bool:
    """Atoms whose truth on one value `direct_match` decides exactly."""
    if atom.op in ("=", "IN"):
        return True
    if atom.op == "ISSUBSET":
        return atom.path in _ADDRESS_PATHS
    like = atom.values[0]
    return (atom.op == "LIKE" and like.startswith("%.") and like.isascii()
            and not any(c in like[1:] for c in "%_"))


def direct_match(atom: Atom, value: Any) -> bool:
    """A row value that satisfies one atom of a `direct` pattern satisfies the pattern, exactly.

    Why this is the evaluator's answer: such a pattern is one observation expression whose
    comparisons are joined by OR, so it matches an observed-data iff one comparison holds on
    one of its objects; a string `=` holds iff the object's property equals the literal, `IN`
    iff it equals one of the literals, `ISSUBSET` on an address iff the (plain) address lies
    in the network, `LIKE '%.suffix'` (ASCII, no other wildcard) iff the value ends with
    `.suffix`. The caller checks that the object built for this column has the atom's object
    type. The atom's values and the row's value are both in canonical form (`Atom`), as the
    evaluator compares them. Anything else (numbers, lists, an address with a prefix length)
    gets False here and goes to the evaluator. tests/detect/test_fast_compile.py checks this
    against `matches`.
    """
    if not isinstance(value, str):
        return False
    if atom.op in ("=", "IN"):
        return value in atom.values
    if atom.op == "ISSUBSET":
        return _in_network(value, atom.values[0])
    if atom.op == "LIKE":
        return value.endswith(atom.values[0][1:])
    return False


@lru_cache(maxsize=65536)
def _network(text: str) -> Any:
    import ipaddress

    return ipaddress.ip_network(text, strict=False)


def _in_network(value: str, cidr: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(value) in _network(cidr)
    except ValueError:
        return False


def triggers(pattern: str) -> Triggers:
    """The candidate atoms of a pattern. Raises ValueError (parse) or Unindexable."""
    fast = _fast_triggers(pattern)
    return fast if fast is not None else grammar_triggers(pattern)


@lru_cache(maxsize=4096)
def grammar_triggers(pattern: str) -> Triggers:
    """`triggers` through the full STIX grammar (any pattern)."""
    from stix2.pattern_visitor import create_pattern_object

    try:
        tree = create_pattern_object(pattern, version="2.1")
    except Exception as exc:
        raise ValueError(f"pattern does not parse: {exc}") from None
    found = _walk(tree)
    if found is None:
        raise Unindexable(
            "no indexable comparison (only !=, <, >, EXISTS, NOT or non-string values); "
            "it would need a scan of every event"
        )
    return found
