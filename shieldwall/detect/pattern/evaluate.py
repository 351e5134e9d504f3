"""What a pattern means: STIX 2.1 Part 5 semantics over prepared observed data.

Two levels, as in the specification:

* a comparison expression (`[...]`) holds for a *root object* of an observation when its
  atoms hold for values selected from that object (references followed); `AND` binds both
  sides to the same root object, `OR` to either;
* an observation expression holds for a *binding*: a choice of observations for its `[...]`
  leaves that satisfies AND, OR, FOLLOWEDBY and the WITHIN / REPEATS / START-STOP qualifiers,
  never using one sighting twice. An observed-data with `number_observed: n` offers n
  interchangeable sightings, so a binding is a multiset of observations, written as a sorted
  tuple of (observation index, leaf) pairs with each observation used at most n times. This
  is the reference matcher's search, without enumerating the n! orderings of equal sightings.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import itertools
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from shieldwall.detect.pattern import ast
from shieldwall.detect.pattern.observations import ObservationSet, ObservedData
from shieldwall.detect.pattern.regex import compile_like, compile_matches
from shieldwall.detect.pattern.values import (
    canonical_comparison,
    compare,
    equal,
    network_within,
    parse_network,
)

RootTest = Callable[[ObservedData, dict[str, Any]], bool]
Binding = tuple[tuple[int, int], ...]

_KEY, _INDEX, _STAR = 0, 1, 2
_PLAIN, _REF, _REFS, _HEX, _BIN = 0, 1, 2, 3, 4


# -- object paths ---------------------------------------------------------------------------


def _compile_steps(path: ast.ObjectPath) -> tuple[tuple[int, Any, int], ...]:
    out = []
    for step in path.steps:
        if isinstance(step, ast._Star):
            out.append((_STAR, None, _PLAIN))
        elif isinstance(step, int):
            out.append((_INDEX, step, _PLAIN))
        else:
            mode = _PLAIN
            if step.endswith("_ref"):
                mode = _REF
            elif step.endswith("_refs"):
                mode = _REFS
            elif step.endswith("_hex"):
                mode = _HEX
            elif step.endswith("_bin"):
                mode = _BIN
            out.append((_KEY, step, mode))
    return tuple(out)


def _decode(value: Any, mode: int) -> Any:
    """`*_hex` and `*_bin` properties hold binary data; None when they do not decode."""
    try:
        if mode == _HEX:
            return binascii.a2b_hex(value)
        return base64.standard_b64decode(value)
    except (binascii.Error, TypeError, ValueError):
        return None


def select(
    steps: tuple[tuple[int, Any, int], ...], obs: ObservedData, root: dict[str, Any]
) -> list[Any]:
    """The values a path selects from one root object (empty when the path is absent).

    Following the reference: `*_ref` is replaced by the object it names, `*_refs` by the list
    of objects it names (unresolved references dropped, so indexes count resolved ones), `[*]`
    fans out over list elements, and a step that does not apply drops the value silently.
    """
    values: list[Any] = [root]
    for kind, arg, mode in steps:
        stepped: list[Any] = []
        if kind == _KEY:
            for v in values:
                if isinstance(v, dict) and arg in v:
                    x = v[arg]
                    if mode == _PLAIN:
                        stepped.append(x)
                    elif mode == _REF:
                        if type(x) is str:
                            target = obs.objects.get(x)
                            if target is not None:
                                stepped.append(target)
                    elif mode == _REFS:
                        if type(x) is list:
                            resolved = [
                                obs.objects[r]
                                for r in x
                                if type(r) is str and r in obs.objects
                            ]
                            if resolved:
                                stepped.append(resolved)
                    else:
                        decoded = _decode(x, mode)
                        if decoded is not None:
                            stepped.append(decoded)
        elif kind == _INDEX:
            for v in values:
                if isinstance(v, list) and 0 <= arg < len(v):
                    stepped.append(v[arg])
        else:
            for v in values:
                if isinstance(v, list):
                    stepped.extend(v)
        if not stepped:
            return stepped
        values = stepped
    return values


# -- comparison atoms ------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _cached_network(text: str) -> Any:
    return parse_network(text)


def _network_of(value: Any) -> Any:
    return _cached_network(value) if type(value) is str else None


_ORDER: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    ">": lambda c: c > 0,
    "<=": lambda c: c <= 0,
    ">=": lambda c: c >= 0,
}


def value_test(atom: ast.Comparison) -> Callable[[Any], bool]:
    """The test of one selected value against the atom's literal, NOT included; on values
    that have a canonical form, of that form (`values.canonical_comparison`)."""
    canonical = canonical_comparison(atom)
    if canonical is None:
        return _value_test(atom)
    test, form = _value_test(canonical[0]), canonical[1]
    return lambda v: test(form(v) if type(v) is str else v)


def _value_test(atom: ast.Comparison) -> Callable[[Any], bool]:
    """The test of one selected value against the atom's literal, NOT included.

    NOT negates each value's test, as the spec says, with the reference's one exception: an
    ordering between types that do not order is false with or without NOT.
    """
    op, lit, negated = atom.operator, atom.value, atom.negated
    if op in _ORDER:
        holds = _ORDER[op]

        def order(v: Any) -> bool:
            try:
                c = compare(v, lit)
            except ValueError:
                return negated
            if c is None:
                return False
            return holds(c) != negated

        return order
    test = _plain_test(atom)
    if not negated:
        return test
    return lambda v: not test(v)


def _plain_test(atom: ast.Comparison) -> Callable[[Any], bool]:
    op, lit = atom.operator, atom.value
    if op == "=" or op == "!=":
        if type(lit) is str:
            latin1 = _latin1_or_none(lit)

            def eq(v: Any) -> bool:
                t = type(v)
                if t is str:
                    return v == lit
                return t is bytes and v == latin1

        else:

            def eq(v: Any) -> bool:
                return equal(v, lit)

        if op == "=":
            return eq
        return lambda v: not eq(v)
    if op == "IN":
        return _in_test(lit)
    if op == "LIKE":
        return compile_like(lit)
    if op == "MATCHES":
        return compile_matches(lit)
    if op == "ISSUBSET":
        outer = parse_network(lit)

        def subset(v: Any) -> bool:
            inner = _network_of(v)
            return inner is not None and network_within(inner, outer)

        return subset
    if op == "ISSUPERSET":
        inner_lit = parse_network(lit)

        def superset(v: Any) -> bool:
            container = _network_of(v)
            return container is not None and network_within(inner_lit, container)

        return superset
    raise ValueError(f"unsupported operator {op}")  # pragma: no cover


def _latin1_or_none(text: str) -> bytes | None:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _in_test(values: tuple[Any, ...]) -> Callable[[Any], bool]:
    """IN is `=` against any member, with a hash set for the common all-string case."""
    if values and all(type(v) is str for v in values):
        members = frozenset(values)

        def in_strings(v: Any) -> bool:
            t = type(v)
            if t is str:
                return v in members
            return t is bytes and v.decode("latin-1") in members

        return in_strings
    if values and all(type(v) in (int, float) for v in values):
        numbers = frozenset(values)

        def in_numbers(v: Any) -> bool:
            t = type(v)
            return (t is int or t is float) and v in numbers

        return in_numbers

    def in_any(v: Any) -> bool:
        return any(equal(v, x) for x in values)

    return in_any


def atom_test(atom: ast.Comparison) -> RootTest:
    """Does the atom hold for this root object (for some value its path selects)?

    NOT EXISTS holds for a root object of the type that lacks the property.
    """
    steps = _compile_steps(atom.path)
    object_type = atom.path.object_type
    negated = atom.negated
    if atom.operator == "EXISTS":

        def exists(obs: ObservedData, root: dict[str, Any]) -> bool:
            if root.get("type") != object_type:
                return False
            return bool(select(steps, obs, root)) != negated

        return exists
    test = value_test(atom)
    if len(steps) == 1 and steps[0][0] == _KEY and steps[0][2] == _PLAIN:
        key = steps[0][1]

        def simple(obs: ObservedData, root: dict[str, Any]) -> bool:
            if root.get("type") != object_type or key not in root:
                return False
            return test(root[key])

        return simple

    def general(obs: ObservedData, root: dict[str, Any]) -> bool:
        if root.get("type") != object_type:
            return False
        return any(test(v) for v in select(steps, obs, root))

    return general


def values_matching(atom: ast.Comparison, obs: ObservedData, root: dict[str, Any]) -> list[Any]:
    """The selected values that made the atom hold (for explanations)."""
    if root.get("type") != atom.path.object_type:
        return []
    values = select(_compile_steps(atom.path), obs, root)
    if atom.operator == "EXISTS":
        return values if (bool(values) != atom.negated) else []
    test = value_test(atom)
    return [v for v in values if test(v)]


# -- comparison expressions ------------------------------------------------------------------


def compile_comparison(node: ast.CompNode) -> tuple[RootTest, frozenset[str]]:
    """A root-object test and the object types it can hold for."""
    if isinstance(node, ast.Comparison):
        return atom_test(node), frozenset((node.path.object_type,))
    left, ltypes = compile_comparison(node.left)
    right, rtypes = compile_comparison(node.right)
    if isinstance(node, ast.CompAnd):

        def both(obs: ObservedData, root: dict[str, Any]) -> bool:
            return left(obs, root) and right(obs, root)

        return both, ltypes & rtypes

    def either(obs: ObservedData, root: dict[str, Any]) -> bool:
        return left(obs, root) or right(obs, root)

    return either, ltypes | rtypes


class Leaf:
    """A compiled `[...]`: which observations hold a root object satisfying it."""

    __slots__ = ("node", "test", "types")

    def __init__(self, node: ast.Observation) -> None:
        self.node = node
        self.test, types = compile_comparison(node.expression)
        self.types = tuple(sorted(types))

    def roots(self, data: ObservationSet) -> list[tuple[ObservedData, str, dict[str, Any]]]:
        test = self.test
        return [
            (obs, key, root)
            for t in self.types
            for obs, key, root in data.by_type.get(t, ())
            if test(obs, root)
        ]

    def observations(self, data: ObservationSet) -> list[int]:
        test = self.test
        seen: dict[int, None] = {}
        for t in self.types:
            for obs, _key, root in data.by_type.get(t, ()):
                if obs.index not in seen and test(obs, root):
                    seen[obs.index] = None
        return sorted(seen)

    def any(self, data: ObservationSet) -> bool:
        test = self.test
        for t in self.types:
            for obs, _key, root in data.by_type.get(t, ()):
                if test(obs, root):
                    return True
        return False


# -- observation expressions -----------------------------------------------------------------


class Search:
    """The bindings of an observation expression over one ObservationSet, produced lazily.

    Like the reference matcher, the search is a pipeline of generators, so a pattern that
    matches stops at its first binding; joins pull from both sides in turn, so one large side
    (a REPEATS, say) never has to be exhausted before the other is looked at. `tagged` keeps
    which leaf each observation was bound to (for explanations); without it the leaf is
    written as 0, which merges bindings that differ only in that.
    """

    def __init__(self, data: ObservationSet, leaves: dict[int, Leaf], tagged: bool) -> None:
        self.data = data
        self.obs = data.observations
        self.leaves = leaves
        self.tagged = tagged

    def first(self, node: ast.ObsNode) -> Binding | None:
        return next(self.bindings(node), None)

    def bindings(self, node: ast.ObsNode) -> Iterator[Binding]:
        if isinstance(node, ast.Observation):
            tag = node.leaf if self.tagged else 0
            return iter([((i, tag),) for i in self.leaves[node.leaf].observations(self.data)])
        if isinstance(node, ast.ObsOr):
            return _unique(itertools.chain(self.bindings(node.left), self.bindings(node.right)))
        if isinstance(node, ast.ObsAnd):
            return _unique(self._join(self.bindings(node.left), self.bindings(node.right),
                                      self._merge))
        if isinstance(node, ast.FollowedBy):
            return _unique(self._join(self.bindings(node.left), self.bindings(node.right),
                                      self._followed_by))
        if isinstance(node, ast.Within):
            seconds = node.seconds
            return (b for b in self.bindings(node.operand) if self._within(b, seconds))
        if isinstance(node, ast.StartStop):
            if node.start >= node.stop:
                return iter(())
            start, stop, obs = node.start, node.stop, self.obs
            return (
                b
                for b in self.bindings(node.operand)
                if all(obs[i].first < stop and obs[i].last >= start for i, _ in b)
            )
        if isinstance(node, ast.Repeats):
            if node.times == 1:
                return self.bindings(node.operand)
            return _unique(self._repeats(self.bindings(node.operand), node.times))
        raise TypeError(f"not an observation expression: {node!r}")  # pragma: no cover

    @staticmethod
    def _join(
        left: Iterator[Binding],
        right: Iterator[Binding],
        combine: Callable[[Binding, Binding], Binding | None],
    ) -> Iterator[Binding]:
        """Every combinable (left, right) pair, pulling one binding from each side in turn."""
        seen_left: list[Binding] = []
        seen_right: list[Binding] = []
        a = next(left, None)
        b = next(right, None)
        if a is None or b is None:
            return
        while a is not None or b is not None:
            if b is not None:
                for x in seen_left:
                    m = combine(x, b)
                    if m is not None:
                        yield m
                seen_right.append(b)
                b = next(right, None)
            if a is not None:
                for y in seen_right:
                    m = combine(a, y)
                    if m is not None:
                        yield m
                seen_left.append(a)
                a = next(left, None)

    def _merge(self, a: Binding, b: Binding) -> Binding | None:
        """a and b together, if no observed-data is used more often than it was seen."""
        merged = tuple(sorted(a + b))
        prev, run = -1, 0
        obs = self.obs
        for i, _ in merged:
            if i == prev:
                run += 1
                if run > obs[i].count:
                    return None
            else:
                prev, run = i, 1
        return merged

    def _followed_by(self, a: Binding, b: Binding) -> Binding | None:
        """Timestamps can be chosen so that all of a precede (or equal) all of b."""
        obs = self.obs
        if max(obs[i].first for i, _ in a) > min(obs[i].last for i, _ in b):
            return None
        return self._merge(a, b)

    def _within(self, binding: Binding, seconds: float) -> bool:
        """Some window of `seconds` touches every observation's [first, last] interval."""
        earliest_last = min(self.obs[i].last for i, _ in binding)
        latest_first = max(self.obs[i].first for i, _ in binding)
        try:
            return latest_first <= earliest_last + _dt.timedelta(seconds=seconds)
        except OverflowError:
            return True

    def _repeats(self, base: Iterator[Binding], times: int) -> Iterator[Binding]:
        """Multisets of `times` bindings that fit the sighting counts, each new base binding
        combined with those seen before it (so the first answer comes early)."""
        seen: list[Binding] = []
        for new in base:
            seen.append(new)
            # `copies` uses of the new binding, the rest from the earlier ones
            acc: Binding | None = new
            for copies in range(1, times + 1):
                if acc is None:
                    break
                yield from self._fill(acc, seen, len(seen) - 1, times - copies)
                acc = self._merge(acc, new) if copies < times else None

    def _fill(self, acc: Binding, pool: list[Binding], end: int, k: int) -> Iterator[Binding]:
        """acc plus k more bindings chosen (with repetition) from pool[:end]."""
        if k == 0:
            yield acc
            return
        for j in range(end - 1, -1, -1):
            merged = self._merge(acc, pool[j])
            if merged is not None:
                yield from self._fill(merged, pool, j + 1, k - 1)


def _unique(bindings: Iterator[Binding]) -> Iterator[Binding]:
    seen: set[Binding] = set()
    for b in bindings:
        if b not in seen:
            seen.add(b)
            yield b


def leaves_of(pattern: ast.Pattern) -> dict[int, Leaf]:
    return {leaf.leaf: Leaf(leaf) for leaf in pattern.leaves}
