"""What a pattern means: STIX 2.1 Part 5 semantics over prepared observed data.

Two levels, as in the specification:

* a comparison expression (`[...]`) holds for a *root object* of an observation when its
  atoms hold for values selected from that object (references followed); `AND` binds both
  sides to the same root object, `OR` to either;
* an observation expression holds for a *binding*: a choice of observations for its `[...]`
  leaves that satisfies AND, OR, FOLLOWEDBY and the WITHIN / REPEATS / START-STOP qualifiers,
  never using one sighting twice. An observed-data with `number_observed: n` offers n
  interchangeable sightings, so a binding is a multiset of observations, written as a sorted
  tuple of (observation index, leaf) pairs with each observation used at most n times. The
  reference matcher enumerates bindings; `Search` decides in bounded time (see below).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as _dt
import heapq
import itertools
import logging
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import numpy as np

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
#
# Whether an observation expression has a binding is NP-hard in general (REPEATS over an OR of
# ANDs encodes 3-dimensional matching), so the reference matcher's way, enumerating bindings,
# can take exponential time on a pattern a peer shared (`([a] FOLLOWEDBY [b]) REPEATS 10
# TIMES`). Shieldwall decides in bounded steps instead (docs/patterns.md, "Cost"):
#
# 1. the pattern becomes a *plan* (`_plan`): each single-observation part is a bag (k sightings
#    from one set of observations), START/STOP is pushed down to the bags, REPEATS of a bag
#    multiplies its k, and REPEATS of anything else is unrolled into copies, so the plan's
#    size is known when the pattern is compiled (`plan_size`, refused above MAX_PLAN_NODES);
# 2. over the observations sorted by time, a dynamic programme gives for each plan node and
#    each lower bound L on last_observed the earliest completion: the least latest
#    first_observed of a binding whose observations all end at or after L (`_frontier`). It
#    ignores that two bags may want the same sighting, so when it finds no binding there is
#    none;
# 3. a binding is then built from the frontiers, consuming sightings so that none is used
#    twice (`_take`; `(x FOLLOWEDBY y) REPEATS k` by a maximum matching, `_take_pairs`, which
#    is exact); when that succeeds the pattern matches. When it does not (an observation
#    that two bags compete for), a counting bound (Hall's condition over the bags) can still
#    prove there is no binding; otherwise the exact enumeration decides within a step budget,
#    and past it the pattern is *undecided*: no match, and a warning names it.

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MICROSECOND = _dt.timedelta(microseconds=1)
_INF = 1 << 62  # later than any timestamp, in microseconds (and int64, with room to add)
_AND, _OR, _SEQ, _WITHIN = "AND", "OR", "FOLLOWEDBY", "WITHIN"

MAX_PLAN_NODES = 256
"""Plan nodes a pattern may have once REPEATS of multi-observation expressions is unrolled."""
ENUMERATION_BUDGET = 200_000
"""Steps (combinations tried) the exact enumeration may take before a verdict is undecided."""
_WINDOW_RETRIES = 16  # later window starts tried, in all, when building one binding

log = logging.getLogger(__name__)


def _micros(t: _dt.datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


def _seconds_micros(seconds: float) -> int:
    try:
        return min(_dt.timedelta(seconds=seconds) // _MICROSECOND, _INF)
    except OverflowError:
        return _INF


def is_single(node: ast.ObsNode) -> bool:
    """Does every binding of `node` hold exactly one observation (one sighting)?"""
    if isinstance(node, ast.Observation):
        return True
    if isinstance(node, ast.ObsOr):
        return is_single(node.left) and is_single(node.right)
    if isinstance(node, ast.StartStop | ast.Within):
        return is_single(node.operand)
    if isinstance(node, ast.Repeats):
        return node.times == 1 and is_single(node.operand)
    return False


def plan_size(node: ast.ObsNode) -> int:
    """How many nodes `_plan` makes of `node` (REPEATS of what is not a bag unrolled)."""
    if is_single(node):
        return 1
    if isinstance(node, ast.ObsOr | ast.ObsAnd | ast.FollowedBy):
        return 1 + plan_size(node.left) + plan_size(node.right)
    if isinstance(node, ast.Within):
        return 1 + plan_size(node.operand)
    if isinstance(node, ast.StartStop):
        return plan_size(node.operand)
    if isinstance(node, ast.Repeats):
        if isinstance(node.operand, ast.Repeats):
            return plan_size(ast.Repeats(node.operand.operand, node.times * node.operand.times))
        if isinstance(node.operand, ast.ObsAnd):
            return plan_size(_distribute(node.operand, node.times))
        inner = plan_size(node.operand)
        if inner == 1 or node.times == 1:
            return inner
        return 1 + node.times * inner
    raise TypeError(f"not an observation expression: {node!r}")  # pragma: no cover


def _distribute(node: ast.ObsAnd, times: int) -> ast.ObsAnd:
    """(X AND Y) REPEATS k is (X REPEATS k) AND (Y REPEATS k): AND constrains nothing but the
    use of distinct sightings, so k disjoint pairs are k X's and k Y's, all distinct."""
    return ast.ObsAnd(ast.Repeats(node.left, times), ast.Repeats(node.right, times))


class _Bag:
    """k distinct sightings from the observations a single-observation expression selects,
    each inside every START/STOP window above it."""

    __slots__ = ("k", "node", "windows")

    def __init__(self, node: ast.ObsNode, k: int, windows: tuple[tuple[int, int], ...]) -> None:
        self.node, self.k, self.windows = node, k, windows


class _Op:
    __slots__ = ("children", "kind", "micros")

    def __init__(self, kind: str, children: list[Any], micros: int = 0) -> None:
        self.kind, self.children, self.micros = kind, children, micros


_Plan = _Bag | _Op


def _plan(node: ast.ObsNode, windows: tuple[tuple[int, int], ...] = ()) -> _Plan:
    while isinstance(node, ast.Repeats) and node.times == 1:
        node = node.operand
    if is_single(node):
        return _Bag(node, 1, windows)
    if isinstance(node, ast.ObsOr | ast.ObsAnd | ast.FollowedBy):
        kind = _OR if isinstance(node, ast.ObsOr) else _AND if isinstance(
            node, ast.ObsAnd) else _SEQ
        return _Op(kind, [_plan(node.left, windows), _plan(node.right, windows)])
    if isinstance(node, ast.Within):
        return _Op(_WITHIN, [_plan(node.operand, windows)], _seconds_micros(node.seconds))
    if isinstance(node, ast.StartStop):
        if node.start >= node.stop:
            return _Op(_OR, [])  # no binding
        return _plan(node.operand, (*windows, (_micros(node.start), _micros(node.stop))))
    if isinstance(node, ast.Repeats):
        if isinstance(node.operand, ast.Repeats):  # (X REPEATS a) REPEATS b: X REPEATS a*b
            return _plan(ast.Repeats(node.operand.operand, node.times * node.operand.times),
                         windows)
        if isinstance(node.operand, ast.ObsAnd):
            return _plan(_distribute(node.operand, node.times), windows)
        inner = _plan(node.operand, windows)
        if node.times == 1:
            return inner
        if isinstance(inner, _Bag):  # (X REPEATS a) REPEATS b is X REPEATS a*b
            return _Bag(inner.node, inner.k * node.times, inner.windows)
        return _Op(_AND, [inner] * node.times)  # copies share one object (and its frontier)
    raise TypeError(f"not an observation expression: {node!r}")  # pragma: no cover


def _shape(node: ast.ObsNode) -> Any:
    """A single-observation expression without its leaf numbers (hashable)."""
    if isinstance(node, ast.Observation):
        return node.expression
    if isinstance(node, ast.ObsOr):
        return ("OR", _shape(node.left), _shape(node.right))
    if isinstance(node, ast.StartStop):
        return ("START", node.start, node.stop, _shape(node.operand))
    return _shape(node.operand)  # type: ignore[union-attr]  # WITHIN, REPEATS 1 TIMES


def _pairs(plan: _Plan) -> tuple[_Bag, _Bag, int | None] | None:
    """`(x FOLLOWEDBY y) REPEATS k` (or `((x FOLLOWEDBY y) WITHIN w) REPEATS k`) with x and y
    single sightings: (x, y, w), matched exactly by `Search._take_pairs`."""
    if not (isinstance(plan, _Op) and plan.kind == _AND and len(plan.children) > 1):
        return None
    copy = plan.children[0]
    if any(c is not copy for c in plan.children):
        return None
    window = None
    if isinstance(copy, _Op) and copy.kind == _WITHIN:
        window, copy = copy.micros, copy.children[0]
    if isinstance(copy, _Op) and copy.kind == _SEQ and all(
            isinstance(c, _Bag) and c.k == 1 for c in copy.children):
        x, y = copy.children
        return x, y, window  # type: ignore[return-value]
    return None


class _Exhausted(Exception):
    """The exact enumeration used up its step budget."""


class Search:
    """Decides an observation expression over one ObservationSet and finds a binding.

    `first(node)` returns a binding (a sorted tuple of (observation index, leaf) pairs, each
    observation at most `number_observed` times) or None. `tagged` keeps which leaf each
    observation was bound to (for explanations); without it the leaf is written as 0.
    `undecided` is set when a verdict was left undecided (see the comment above).
    """

    def __init__(self, data: ObservationSet, leaves: dict[int, Leaf], tagged: bool) -> None:
        self.data = data
        self.obs = data.observations
        self.leaves = leaves
        self.tagged = tagged
        self.undecided = False
        self.steps = 0  # frontier cells computed and sightings taken: the bounded work
        self._timed = False  # the timeline's fields below are read on first need
        self._contention = np.zeros(0, dtype=np.int64)  # bags that can use each observation
        self._retries = 0
        self._exact_miss = False  # the last pairs matching found too few (it is maximum)
        self._simple_memo: dict[int, tuple[ast.ObsNode, dict[int, int]]] = {}
        self._bag_memo: dict[tuple[int, tuple[tuple[int, int], ...]], list[int]] = {}
        self._key_bag: dict[tuple[int, tuple[tuple[int, int], ...]], _Bag] = {}
        self._shapes: dict[Any, int] = {}  # a bag's expression, leaf numbers left out -> id
        self._shape_of: dict[int, tuple[ast.ObsNode, int]] = {}
        self._demands: dict[int, dict[tuple[int, Any], int] | None] = {}
        self._left = np.zeros(0, dtype=np.int64)  # sightings not yet taken, per observation
        self._leaf_memo: dict[Any, list[int]] = {}  # comparison expression -> observations
        # A frontier stays valid until a sighting of one of its bags is taken: each bag has a
        # version, bumped when one of its observations is consumed, and a frontier is stamped
        # with the sum of its bags' versions.
        self._bag_version: dict[tuple[int, Any], int] = {}
        self._bags_of_obs: dict[int, list[tuple[int, Any]]] = {}
        self._bags_under: dict[int, list[tuple[int, Any]]] = {}
        self._frontiers: dict[int, tuple[int, np.ndarray]] = {}
        self._bag_frontiers: dict[tuple[Any, int], tuple[int, np.ndarray]] = {}

    # -- the decision --------------------------------------------------------------------

    def first(self, node: ast.ObsNode) -> Binding | None:
        if not self.obs:
            return None
        plan = _plan(node)
        if self._hopeless(plan):
            return None  # a part none of the observations can satisfy
        if not self._timed:
            t = self.data.timeline
            self._first, self._last, self._ls, self._lpos = t.first, t.last, t.ls, t.lpos
            self._first_array, self._last_array = t.first_array, t.last_array
            self._ls_array, self._lpos_array = t.ls_array, t.lpos_array
            self._timed = True
        self._left = np.array([min(o.count, _INF) for o in self.obs], dtype=np.int64)
        self._frontiers.clear()
        self._bag_frontiers.clear()
        self._bags_under.clear()
        self._demands.clear()
        if self._frontier(plan)[0] >= _INF:
            return None  # even reusing sightings there is no binding
        taken: list[tuple[int, int]] = []
        self._contention = np.array([len(self._bags_of_obs.get(o, ())) for o in
                                     range(len(self.obs))], dtype=np.int64)
        self._retries = _WINDOW_RETRIES
        self._exact_miss = False
        if self._take(plan, 0, _INF, taken):
            return tuple(sorted(taken))
        if self._exact_miss and _pairs(plan) is not None:
            return None  # the matching of the pairs is maximum: there are not enough
        if not self._enough_sightings(plan):
            return None
        try:
            return _Enumeration(self.data, self.leaves, self.tagged, ENUMERATION_BUDGET).first(node)
        except _Exhausted:
            self.undecided = True
            log.warning("pattern part %s left undecided: no binding found within %d steps",
                        node, ENUMERATION_BUDGET)
            return None

    def _hopeless(self, plan: _Plan) -> bool:
        """No observation satisfies some part every binding needs (no timeline needed)."""
        if isinstance(plan, _Bag):
            return not self._simple(plan.node)
        if plan.kind == _OR:
            return all(self._hopeless(c) for c in plan.children)
        return any(self._hopeless(c) for c in dict.fromkeys(plan.children))

    # -- the sets of observations of the bags --------------------------------------------

    def _simple(self, node: ast.ObsNode) -> dict[int, int]:
        """observation index -> leaf, for the observations a single-observation expression
        selects (ascending)."""
        memo = self._simple_memo.get(id(node))
        if memo is not None:
            return memo[1]
        out: dict[int, int]
        if isinstance(node, ast.Observation):
            tag = node.leaf if self.tagged else 0
            found = self._leaf_memo.get(node.expression)  # a leaf repeated is tested once
            if found is None:
                found = self._leaf_memo[node.expression] = self.leaves[
                    node.leaf].observations(self.data)
            out = dict.fromkeys(found, tag)
        elif isinstance(node, ast.ObsOr):
            out = dict(self._simple(node.left))
            for i, tag in self._simple(node.right).items():
                out.setdefault(i, tag)
            out = dict(sorted(out.items()))
        elif isinstance(node, ast.StartStop):
            obs = self.obs
            out = {} if node.start >= node.stop else {
                i: tag for i, tag in self._simple(node.operand).items()
                if obs[i].first < node.stop and obs[i].last >= node.start
            }
        else:  # WITHIN on one observation always holds; REPEATS 1 TIMES is the operand
            out = self._simple(node.operand)  # type: ignore[union-attr]
        self._simple_memo[id(node)] = (node, out)
        return out

    def _bag(self, bag: _Bag) -> list[int]:
        """The bag's observations, latest last_observed first."""
        key = self._key(bag)
        found = self._bag_memo.get(key)
        if found is None:
            first, last = self._first, self._last
            found = [i for i in self._simple(bag.node)
                     if all(first[i] < stop and last[i] >= start for start, stop in bag.windows)]
            found.sort(key=lambda i: -last[i])
            self._bag_memo[key] = found
            self._bag_version[key] = 0
            for i in found:
                self._bags_of_obs.setdefault(i, []).append(key)
        return found

    def _key(self, bag: _Bag) -> tuple[int, tuple[tuple[int, int], ...]]:
        """Bags that select the same observations (the same expression, whatever its leaf
        numbers, in the same windows) share a key: they compete for the same sightings."""
        memo = self._shape_of.get(id(bag.node))
        if memo is None:
            memo = (bag.node, self._shapes.setdefault(_shape(bag.node), len(self._shapes)))
            self._shape_of[id(bag.node)] = memo
        return (memo[1], bag.windows)

    def _stamp(self, plan: _Plan) -> int:
        keys = self._bags_under.get(id(plan))
        if keys is None:
            if isinstance(plan, _Bag):
                self._bag(plan)
                keys = [self._key(plan)]
            else:
                keys = list(dict.fromkeys(k for c in plan.children for k in self._keys(c)))
            self._bags_under[id(plan)] = keys
        version = self._bag_version
        return sum(version[k] for k in keys)

    def _keys(self, plan: _Plan) -> list[tuple[int, Any]]:
        self._stamp(plan)
        return self._bags_under[id(plan)]

    def _consumed(self, o: int) -> None:
        for key in self._bags_of_obs.get(o, ()):
            self._bag_version[key] += 1

    # -- step 2: earliest completion -----------------------------------------------------

    def _frontier(self, plan: _Plan) -> np.ndarray:
        """F[i]: the least latest first_observed of a binding of `plan` whose observations all
        have last_observed >= ls[i], using the sightings not yet taken; F[len(ls)] is _INF.
        Non-decreasing in i. O(n log n) per node."""
        stamp = self._stamp(plan)
        cached = self._frontiers.get(id(plan))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        q = len(self._ls)
        self.steps += q
        out: np.ndarray
        if isinstance(plan, _Bag):
            out = self._bag_frontier(plan)
        elif plan.kind == _OR:
            out = np.full(q + 1, _INF, dtype=np.int64)
            for child in plan.children:
                out = np.minimum(out, self._frontier(child))
        elif plan.kind == _AND:
            out = self._frontier(plan.children[0])
            for child in plan.children[1:]:
                out = np.maximum(out, self._frontier(child))
            # the parts together need that many distinct sightings from each bag
            for key, k in (self._demand(plan) or {}).items():
                if k > 1:
                    out = np.maximum(out, self._bag_frontier(self._key_bag[key], k))
        elif plan.kind == _SEQ:
            # the right side ends at or after both ls[i] and the left side's completion
            fx, fy = self._frontier(plan.children[0]), self._frontier(plan.children[1])
            ls = self._ls_array
            gx = fx[:q]
            out = fx.copy()
            out[:q] = np.maximum(gx, fy[np.searchsorted(ls, np.maximum(gx, ls))])
        else:  # WITHIN: the first binding ending at ls[j] >= ls[i] that fits its window
            fx = self._frontier(plan.children[0])
            fits = np.where(fx[:q] <= self._ls_array + plan.micros, fx[:q], _INF)
            out = fx.copy()
            out[:q] = np.minimum.accumulate(fits[::-1])[::-1]
        self._frontiers[id(plan)] = (stamp, out)
        return out

    def _bag_frontier(self, bag: _Bag, k: int = 0) -> np.ndarray:
        """For each ls[i], the k-th least first_observed among the bag's sightings left with
        last_observed >= ls[i]; cached per bag key and k until one of its sightings is taken.
        """
        k = k or bag.k
        key = self._key(bag)
        members = self._bag(bag)
        stamp = self._bag_version[key]
        cached = self._bag_frontiers.get((key, k))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        q = len(self._ls)
        idx = np.array(members, dtype=np.int64)
        left = self._left[idx] if members else self._left[:0]
        alive = left > 0
        idx, left = idx[alive], left[alive]
        lpos = self._lpos_array[idx]
        first = self._first_array[idx]
        at = np.full(q + 1, _INF, dtype=np.int64)  # the value once ls[p]'s sightings are in
        if k == 1:
            np.minimum.at(at, lpos, first)
        else:  # a max-heap keeps the k least, members taken latest last_observed first
            heap: list[tuple[int, int]] = []
            held = 0
            for o_lpos, o_first, o_left in zip(lpos.tolist(), first.tolist(), left.tolist(),
                                               strict=True):
                heapq.heappush(heap, (-o_first, o_left))
                held += o_left
                while held - heap[0][1] >= k:  # the latest is not needed for the k least
                    held -= heapq.heappop(heap)[1]
                if held >= k:
                    at[o_lpos] = -heap[0][0]
        out = np.minimum.accumulate(at[::-1])[::-1]
        self._bag_frontiers[(key, k)] = (stamp, out)
        return out

    # -- step 3: a binding that uses no sighting twice -----------------------------------

    def _take(self, plan: _Plan, i: int, latest: int, out: list[tuple[int, int]]) -> bool:
        """Add to `out` a binding of `plan` whose observations end at or after ls[i] and begin
        at or before `latest`, consuming its sightings; False if the greedy choice fails."""
        if self._frontier(plan)[i] > latest:
            return False
        if isinstance(plan, _Bag):
            return self._take_bag(plan, i, latest, out)
        if plan.kind == _AND:
            pairs = _pairs(plan)
            if pairs is not None:
                matched = self._take_pairs(*pairs, len(plan.children), i, latest, out)
                if matched is not None:
                    self._exact_miss = not matched
                    return matched
            return all(self._take(child, i, latest, out) for child in plan.children)
        if plan.kind == _OR:
            order = sorted(plan.children, key=lambda c: self._frontier(c)[i])
            return any(self._attempt(child, i, latest, out) for child in order)
        if plan.kind == _SEQ:
            # the left side as early as it completes (its own parts consuming their
            # sightings), then the right side after the latest first_observed it used
            x, y = plan.children
            size = len(out)
            if not self._take(x, i, latest, out):
                return False
            split = max(self._first[o] for o, _ in out[size:])
            j = i if split <= self._ls[i] else bisect.bisect_left(self._ls, split)
            return j < len(self._ls) and self._take(y, j, latest, out)
        # WITHIN: the earliest window starts from which the operand completes in time
        fx = self._frontier(plan.children[0])
        ls, w = self._ls, plan.micros
        for j in range(i, len(ls)):
            bound = min(latest, ls[j] + w)
            if fx[j] <= bound:
                if self._attempt(plan.children[0], j, bound, out):
                    return True
                if self._retries == 0:
                    break
                self._retries -= 1  # one budget for all WITHINs, however nested
                fx = self._frontier(plan.children[0])
        return False

    def _take_pairs(self, x: _Bag, y: _Bag, window: int | None, k: int, i: int, latest: int,
                    out: list[tuple[int, int]]) -> bool | None:
        """k disjoint (x, y) pairs, x FOLLOWEDBY y (WITHIN window), by a maximum matching;
        None when this exact method does not apply (x and y share observations, or a window
        over observations that last: their compatibility is then no interval).

        x and y compatible means first(x) <= last(y) (and first(y) <= last(x) + window). Taken
        in order of y's last_observed, the x's that fit are nested (each later y fits every x
        an earlier y fitted), so matching each y to any fitting x is maximum; with a window
        and instants, each x fits an interval of the y's, and matching the x whose interval
        ends first is maximum (Glover's rule for convex bipartite graphs).
        """
        first, last, lpos, left = self._first, self._last, self._lpos, self._left
        xs = [o for o in self._bag(x) if lpos[o] >= i and first[o] <= latest and left[o] > 0]
        ys = [o for o in self._bag(y) if lpos[o] >= i and first[o] <= latest and left[o] > 0]
        if set(xs) & set(ys):
            return None
        if window is not None and any(first[o] != last[o] for o in xs + ys):
            return None
        xs.sort(key=lambda o: first[o])
        ys.sort(key=lambda o: last[o])
        spare = [int(left[o]) for o in xs]
        pool: list[tuple[int, int]] = []  # (first, position in xs): x's that fit, unmatched
        pairs: list[tuple[int, int, int]] = []  # (x, y, how many times)
        matched, p = 0, 0
        for b in ys:
            while p < len(xs) and first[xs[p]] <= last[b]:
                heapq.heappush(pool, (first[xs[p]], p))
                p += 1
            room = int(left[b])
            while room and pool and matched < k:
                f, q = pool[0]
                if window is not None and f + window < first[b]:
                    heapq.heappop(pool)  # this x's window has passed for every later y
                    continue
                use = min(room, spare[q], k - matched)
                pairs.append((xs[q], b, use))
                spare[q] -= use
                room -= use
                matched += use
                if spare[q] == 0:
                    heapq.heappop(pool)
            if matched == k:
                break
        self.steps += len(xs) + len(ys)
        if matched < k:
            return False
        tags_x, tags_y = self._simple(x.node), self._simple(y.node)
        for a, b, use in pairs:
            left[a] -= use
            left[b] -= use
            self._consumed(a)
            self._consumed(b)
            out.extend([(a, tags_x[a]), (b, tags_y[b])] * min(use, 64))
        return True

    def _attempt(self, plan: _Plan, i: int, latest: int, out: list[tuple[int, int]]) -> bool:
        """`_take`, or nothing taken if it fails."""
        left, size = self._left.copy(), len(out)
        if self._take(plan, i, latest, out):
            return True
        for o, _ in out[size:]:  # put the sightings back
            self._consumed(o)
        self._left = left
        del out[size:]
        return False

    def _take_bag(self, bag: _Bag, i: int, latest: int, out: list[tuple[int, int]]) -> bool:
        """k sightings in the box: those that begin earliest, then those fewest other bags
        can use, then those that end earliest (leaving later ones to later parts)."""
        idx = np.array(self._bag(bag), dtype=np.int64)
        left = self._left
        fits = idx[(self._lpos_array[idx] >= i) & (self._first_array[idx] <= latest)
                   & (left[idx] > 0)]
        fits = fits[np.lexsort((self._last_array[fits], self._contention[fits],
                                self._first_array[fits]))]
        tags = self._simple(bag.node)
        need = bag.k
        for o in fits.tolist():
            use = min(need, int(left[o]))
            self.steps += 1
            left[o] -= use
            self._consumed(o)
            out.extend([(o, tags[o])] * min(use, 64))  # a binding lists up to 64 of each
            need -= use
            if need == 0:
                break
        return need == 0

    # -- a counting bound for competing bags ---------------------------------------------

    def _demand(self, plan: _Plan) -> dict[tuple[int, Any], int] | None:
        """Sightings every binding needs from each bag (None: the plan has no binding)."""
        if id(plan) not in self._demands:
            self._demands[id(plan)] = self._demand_of(plan)
        return self._demands[id(plan)]

    def _demand_of(self, plan: _Plan) -> dict[tuple[int, Any], int] | None:
        if isinstance(plan, _Bag):
            key = self._key(plan)
            self._key_bag[key] = plan
            return {key: plan.k}
        parts = [self._demand(c) for c in plan.children]
        if plan.kind == _OR:
            parts = [p for p in parts if p is not None]
            if not parts:
                return None
            return {key: min(p.get(key, 0) for p in parts) for key in parts[0]}
        if any(p is None for p in parts):
            return None
        total: dict[tuple[int, Any], int] = {}
        for p in parts:
            for key, k in p.items():  # type: ignore[union-attr]
                total[key] = total.get(key, 0) + k
        return total

    def _enough_sightings(self, plan: _Plan) -> bool:
        """Hall's condition: every group of bags needs no more sightings than its
        observations hold (all groups up to 8 bags, else each bag and all of them)."""
        demand = self._demand(plan)
        if demand is None:
            return False
        members = {key: self._bag(self._key_bag[key]) for key in demand}
        keys = [key for key, k in demand.items() if k > 0]
        if len(keys) <= 8:
            groups = [c for r in range(1, len(keys) + 1) for c in itertools.combinations(keys, r)]
        else:
            groups = [(key,) for key in keys] + [tuple(keys)]
        counts = [o.count for o in self.obs]
        for group in groups:
            union = set().union(*(members[key] for key in group))
            if sum(counts[o] for o in union) < sum(demand[key] for key in group):
                return False
        return True


class _Enumeration:
    """The bindings of an observation expression, enumerated (exponential in the worst case,
    so only ever run under a step budget, when `Search` could not decide otherwise).

    Like the reference matcher, the search is a pipeline of generators, so a pattern that
    matches stops at its first binding; joins pull from both sides in turn, so one large side
    (a REPEATS, say) never has to be exhausted before the other is looked at. `tagged` keeps
    which leaf each observation was bound to (for explanations); without it the leaf is
    written as 0, which merges bindings that differ only in that.
    """

    def __init__(self, data: ObservationSet, leaves: dict[int, Leaf], tagged: bool,
                 budget: int = ENUMERATION_BUDGET) -> None:
        self.data = data
        self.obs = data.observations
        self.leaves = leaves
        self.tagged = tagged
        self.budget = budget  # combinations tried before giving up (_Exhausted)

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
        self.budget -= 1
        if self.budget < 0:
            raise _Exhausted
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
        self.budget -= 1
        if self.budget < 0:
            raise _Exhausted
        obs = self.obs
        if max(obs[i].first for i, _ in a) > min(obs[i].last for i, _ in b):
            return None
        return self._merge(a, b)

    def _within(self, binding: Binding, seconds: float) -> bool:
        """Some window of `seconds` touches every observation's [first, last] interval."""
        self.budget -= 1
        if self.budget < 0:
            raise _Exhausted
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
