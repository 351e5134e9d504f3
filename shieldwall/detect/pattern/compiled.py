"""A pattern compiled once and matched many times, with the reasons for each match.

A sighting must say *why* it matched: `explain()` returns a small tree in the manner of capa's
`Result(success, statement, children)`, whose leaves name the observed-data, the object in it
and the property value that satisfied each comparison.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from shieldwall.detect.pattern import ast
from shieldwall.detect.pattern.ast import PatternError
from shieldwall.detect.pattern.evaluate import Binding, Leaf, Search, leaves_of, values_matching
from shieldwall.detect.pattern.observations import ObservationSet, ObservedData
from shieldwall.detect.pattern.parse import parse

ObservedInput = ObservationSet | Iterable[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Hit:
    """One property value that satisfied one comparison atom."""

    observed_data: int  # position of the observed-data in the ObservationSet
    observed_data_id: str | None
    object_key: str  # "0", "1", … (STIX 2.0) or the SCO id (STIX 2.1)
    atom: ast.Comparison
    value: Any

    def __str__(self) -> str:
        where = self.observed_data_id or f"observed-data #{self.observed_data}"
        return f"{self.atom} ← {where} object {self.object_key}: {self.value!r}"


@dataclass(slots=True)
class Result:
    """Whether `node` held, and the results beneath it that show why.

    Observation-expression nodes list their operands; a `[...]` lists one result per root
    object that satisfied it; a comparison lists its operands, and an atom its `hits`.
    `observed_data` holds the positions bound under this node in the chosen binding.
    """

    success: bool
    node: Any
    children: list[Result] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    observed_data: tuple[int, ...] = ()
    object_key: str | None = None

    def all_hits(self) -> list[Hit]:
        out = list(self.hits)
        for child in self.children:
            out.extend(child.all_hits())
        return out

    def render(self, indent: int = 0) -> str:
        """Plain text for logs and the CLI: one line per node, hits beneath their atom."""
        mark = "✓" if self.success else "✗"
        where = f"  (object {self.object_key})" if self.object_key is not None else ""
        lines = ["  " * indent + f"{mark} {self.node}{where}"]
        lines += ["  " * (indent + 1) + f"= {h.value!r}" for h in self.hits]
        lines += [c.render(indent + 1) for c in self.children]
        return "\n".join(lines)


class CompiledPattern:
    """A parsed, checked and compiled STIX pattern.

    `atoms` lists every comparison (object type, property path, operator, value, negated) so a
    candidate index can file the pattern under the values it looks for.
    """

    __slots__ = ("_leaves", "_single", "pattern")

    def __init__(self, pattern: ast.Pattern) -> None:
        self.pattern = pattern
        self._leaves: dict[int, Leaf] = leaves_of(pattern)
        root = pattern.root
        self._single: Leaf | None = (
            self._leaves[root.leaf] if isinstance(root, ast.Observation) else None
        )

    @property
    def text(self) -> str:
        return self.pattern.text

    @property
    def atoms(self) -> tuple[ast.Comparison, ...]:
        return self.pattern.atoms

    def __repr__(self) -> str:
        return f"CompiledPattern({self.pattern.text!r})"

    def matches(self, observed: ObservedInput) -> bool:
        """True if some binding of observations satisfies the pattern."""
        data = ObservationSet.of(observed)
        if self._single is not None:
            return self._single.any(data)
        return Search(data, self._leaves, tagged=False).first(self.pattern.root) is not None

    def matching_observed_data(self, observed: ObservedInput) -> list[dict[str, Any]]:
        """The observed-data SDOs of the first binding found (empty if no match), as the
        reference matcher's `match()` returns them."""
        data = ObservationSet.of(observed)
        binding = Search(data, self._leaves, tagged=False).first(self.pattern.root)
        if binding is None:
            return []
        return [data.observations[i].sdo for i in sorted({i for i, _ in binding})]

    def explain(self, observed: ObservedInput) -> Result:
        """The match decision with its reasons: for a match, the binding found, each `[...]`
        with the objects it was bound to and the values that satisfied each atom; for a miss,
        which parts held on their own."""
        data = ObservationSet.of(observed)
        search = Search(data, self._leaves, tagged=True)
        binding = search.first(self.pattern.root)
        return self._explain(self.pattern.root, data, search, binding or ())

    def _explain(
        self, node: ast.ObsNode, data: ObservationSet, search: Search, binding: Binding
    ) -> Result:
        if isinstance(node, ast.Observation):
            leaf = self._leaves[node.leaf]
            bound = tuple(sorted({i for i, tag in binding if tag == node.leaf}))
            if bound:
                roots = [r for r in leaf.roots(data) if r[0].index in bound]
            else:
                roots = leaf.roots(data)
            children = [_explain_root(node.expression, obs, key, root) for obs, key, root in roots]
            return Result(bool(roots), node, children, observed_data=bound)
        operands = [
            getattr(node, name) for name in ("left", "right", "operand") if hasattr(node, name)
        ]
        children = [self._explain(child, data, search, binding) for child in operands]
        bound = tuple(sorted({i for c in children for i in c.observed_data}))
        success = search.first(node) is not None
        return Result(success, node, children, observed_data=bound)


def _explain_root(node: ast.CompNode, obs: ObservedData, key: str, root: dict[str, Any]) -> Result:
    result = _explain_comparison(node, obs, key, root)
    result.object_key = key
    result.observed_data = (obs.index,)
    return result


def _explain_comparison(
    node: ast.CompNode, obs: ObservedData, key: str, root: dict[str, Any]
) -> Result:
    if isinstance(node, ast.Comparison):
        values = values_matching(node, obs, root)
        hits = [Hit(obs.index, obs.id, key, node, v) for v in values]
        ok = bool(values) or (
            node.operator == "EXISTS" and node.negated and root.get("type") == node.object_type
            and not values
        )
        return Result(ok, node, hits=hits)
    left = _explain_comparison(node.left, obs, key, root)
    right = _explain_comparison(node.right, obs, key, root)
    ok = (left.success and right.success) if isinstance(node, ast.CompAnd) else (
        left.success or right.success
    )
    return Result(ok, node, [left, right])


def compile_pattern(text: str) -> CompiledPattern:
    """Parse, check and compile a STIX 2.1 pattern; PatternError (a ValueError) if unusable.

    Compiled patterns are cached by text: feeds repeat indicators, and parsing with the ANTLR
    grammar costs far more than matching.
    """
    if not isinstance(text, str):
        raise PatternError(f"a STIX pattern is a string, not {type(text).__name__}")
    return _compile_cached(text)


@lru_cache(maxsize=8192)
def _compile_cached(text: str) -> CompiledPattern:
    return CompiledPattern(parse(text))


def matches(pattern: str | CompiledPattern, observed_data: ObservedInput) -> bool:
    """Does the STIX 2.1 pattern match the observed data?

    `observed_data` is a list of observed-data SDOs: STIX 2.0 style with inline `objects`, or
    STIX 2.1 style with `object_refs` and the referenced SCOs supplied in the same list or in
    bundles (an ObservationSet prepared once is accepted too). An invalid pattern raises
    ValueError with the reason; malformed observed-data raises ValueError naming it.
    """
    compiled = pattern if isinstance(pattern, CompiledPattern) else compile_pattern(pattern)
    return compiled.matches(observed_data)
