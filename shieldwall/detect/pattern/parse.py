"""Build the pattern tree from the OASIS STIX 2.1 grammar's parse tree.

The grammar (stix2-patterns, ANTLR) decides what is a pattern; this module only decodes
literals and checks the rules the grammar cannot express (set homogeneity, positive WITHIN and
REPEATS, valid timestamps, CIDR operands, regular expressions RE2 accepts), so every pattern
that reaches the evaluator is one it can evaluate without raising.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import antlr4
from stix2patterns.exceptions import ParseException
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as P
from stix2patterns.v21.pattern import Pattern as _OasisPattern

from shieldwall.detect.pattern import ast
from shieldwall.detect.pattern.ast import PatternError
from shieldwall.detect.pattern.evaluate import MAX_PLAN_NODES, plan_size
from shieldwall.detect.pattern.regex import compile_like, compile_matches
from shieldwall.detect.pattern.values import parse_network, parse_timestamp

_UNESCAPE = re.compile(r"\\(['\\])")

MAX_PATTERN_LENGTH = 128 * 1024
"""Characters in a pattern; the OASIS grammar's parser is superlinear (10,000 comparisons,
230 KB: 4.5 s), so longer text is refused before it is parsed."""
MAX_NESTING = 64
"""Operators nested in one another (a long chain of one operator counts as its logarithm)."""
_CHAIN_AS_WRITTEN = 16  # chains up to this length keep the grammar's left-to-right shape


class _TreeGrab:
    """The OASIS Pattern keeps its parse tree private; its visit() hands it to us."""

    def visit(self, tree: Any) -> Any:
        return tree


def parse(text: str) -> ast.Pattern:
    """Parse and check a pattern; PatternError (a ValueError) says why it is unusable."""
    if not isinstance(text, str):
        raise PatternError(f"a STIX pattern is a string, not {type(text).__name__}")
    if len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(f"STIX pattern {text[:60]!r}… refused: {len(text):,} characters, "
                           f"more than the {MAX_PATTERN_LENGTH:,} a pattern may have")
    try:
        tree = _OasisPattern(text).visit(_TreeGrab())
        builder = _Builder(text)
        root = builder.observation_expressions(tree.observationExpressions())
    except ParseException as exc:
        raise PatternError(f"invalid STIX pattern {_shown(text)!r}: {exc}") from None
    except RecursionError:
        raise PatternError(f"STIX pattern {text[:60]!r}… refused: nested too deeply to "
                           f"parse (more than {MAX_NESTING} levels are refused)") from None
    except PatternError:
        raise
    except (ValueError, binascii.Error) as exc:
        raise PatternError(f"invalid STIX pattern {_shown(text)!r}: {exc}") from None
    _check_cost(text, root)
    return ast.Pattern(
        text=text, root=root, atoms=tuple(builder.atoms), leaves=tuple(builder.leaves)
    )


def _shown(text: str) -> str:
    """A pattern as error messages quote it: up to 200 characters."""
    return text if len(text) <= 200 else text[:200] + "…"


def _check_cost(text: str, root: ast.ObsNode) -> None:
    """Refuse what evaluation could not bound: nesting deeper than MAX_NESTING (evaluation
    recurses once per level) and plans larger than MAX_PLAN_NODES (REPEATS of a
    multi-observation expression is evaluated as that many copies)."""
    depth = _depth(root)
    if depth > MAX_NESTING:
        raise PatternError(f"STIX pattern {text[:60]!r}… refused: operators nested {depth} "
                           f"deep, more than the {MAX_NESTING} allowed")
    size = plan_size(root)
    if size > MAX_PLAN_NODES:
        raise PatternError(
            f"STIX pattern {text[:60]!r}… refused: evaluating it takes {size:,} steps per "
            f"observation (one per observation expression and operator, REPEATS of several "
            f"observations counted once per repetition), more than the {MAX_PLAN_NODES} "
            f"allowed (docs/patterns.md, Cost)")


def _depth(root: ast.ObsNode) -> int:
    """Levels of the tree, comparisons included, counted without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, ast.Observation):
            stack.append((node.expression, d + 1))
        for name in ("left", "right", "operand"):
            child = getattr(node, name, None)
            if child is not None:
                stack.append((child, d + 1))
    return deepest


def _chained(nodes: list[Any], make: Any) -> Any:
    """Operands of one associative operator, left to right, as a tree: left-deep as written
    for short chains, balanced for long ones so that evaluation recurses log(n) deep."""
    if len(nodes) <= _CHAIN_AS_WRITTEN:
        out = nodes[0]
        for node in nodes[1:]:
            out = make(out, node)
        return out
    while len(nodes) > 1:
        paired = [make(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes = paired
    return nodes[0]


def _operands(ctx: Any, subs: Any) -> tuple[Any, list[Any]]:
    """The grammar's left-recursive `x op y op z`, read without recursion: the innermost
    operand and the right-hand operands, left to right."""
    rights = []
    while True:
        pair = subs(ctx)
        if not pair:
            return ctx, rights[::-1]
        ctx = pair[0]
        rights.append(pair[1])


def _string(token_text: str) -> str:
    return _UNESCAPE.sub(r"\1", token_text[1:-1])


def literal_value(terminal: antlr4.TerminalNode) -> Any:
    """Decode one literal token to its Python value (ValueError if it cannot be decoded)."""
    kind = terminal.getSymbol().type
    text = terminal.getText()
    if kind == P.StringLiteral:
        return _string(text)
    if kind in (P.IntPosLiteral, P.IntNegLiteral):
        return int(text)
    if kind in (P.FloatPosLiteral, P.FloatNegLiteral):
        return float(text)
    if kind == P.BoolLiteral:
        return text.lower() == "true"
    if kind == P.BinaryLiteral:
        try:
            return base64.b64decode(text[2:-1], validate=True)
        except binascii.Error as exc:
            raise ValueError(f"invalid binary literal {text}: {exc}") from None
    if kind == P.HexLiteral:
        try:
            return binascii.a2b_hex(text[2:-1])
        except binascii.Error as exc:
            raise ValueError(f"invalid hex literal {text}: {exc}") from None
    if kind == P.TimestampLiteral:
        try:
            return parse_timestamp(text[2:-1])
        except ValueError as exc:
            raise ValueError(f"invalid timestamp literal {text}: {exc}") from None
    raise ValueError(f"unsupported literal {text}")


def _first_terminal(ctx: Any) -> antlr4.TerminalNode:
    while not isinstance(ctx, antlr4.TerminalNode):
        ctx = ctx.getChild(0)
    return ctx


class _Builder:
    def __init__(self, text: str) -> None:
        self.text = _shown(text)  # for messages
        self.atoms: list[ast.Comparison] = []
        self.leaves: list[ast.Observation] = []

    # observation level ------------------------------------------------------------------

    def observation_expressions(self, ctx: P.ObservationExpressionsContext) -> ast.ObsNode:
        first, rights = _operands(ctx, lambda c: c.observationExpressions())
        nodes = [self.observation_or(first.observationExpressionOr())]
        nodes += [self.observation_expressions(r) for r in rights]
        return _chained(nodes, ast.FollowedBy)

    def observation_or(self, ctx: P.ObservationExpressionOrContext) -> ast.ObsNode:
        first, rights = _operands(ctx, lambda c: c.observationExpressionOr())
        nodes = [self.observation_and(first.observationExpressionAnd())]
        nodes += [self.observation_or(r) for r in rights]
        return _chained(nodes, ast.ObsOr)

    def observation_and(self, ctx: P.ObservationExpressionAndContext) -> ast.ObsNode:
        first, rights = _operands(ctx, lambda c: c.observationExpressionAnd())
        nodes = [self.observation(first.observationExpression())]
        nodes += [self.observation_and(r) for r in rights]
        return _chained(nodes, ast.ObsAnd)

    def observation(self, ctx: Any) -> ast.ObsNode:
        if isinstance(ctx, P.ObservationExpressionSimpleContext):
            expression = self.comparison_or(ctx.comparisonExpression())
            leaf = ast.Observation(expression, leaf=len(self.leaves))
            self.leaves.append(leaf)
            return leaf
        if isinstance(ctx, P.ObservationExpressionCompoundContext):
            return self.observation_expressions(ctx.observationExpressions())
        if isinstance(ctx, P.ObservationExpressionWithinContext):
            operand = self.observation(ctx.observationExpression())
            q = ctx.withinQualifier()
            seconds = literal_value(q.FloatPosLiteral() or q.IntPosLiteral())
            if seconds <= 0:
                raise PatternError(
                    f"invalid STIX pattern {self.text!r}: WITHIN needs a positive number of "
                    f"seconds, got {seconds}"
                )
            return ast.Within(operand, seconds)
        if isinstance(ctx, P.ObservationExpressionRepeatedContext):
            operand = self.observation(ctx.observationExpression())
            times = literal_value(ctx.repeatedQualifier().IntPosLiteral())
            if times < 1:
                raise PatternError(
                    f"invalid STIX pattern {self.text!r}: REPEATS needs at least 1, got {times}"
                )
            return ast.Repeats(operand, times)
        if isinstance(ctx, P.ObservationExpressionStartStopContext):
            operand = self.observation(ctx.observationExpression())
            q = ctx.startStopQualifier()
            start = literal_value(q.TimestampLiteral(0))
            stop = literal_value(q.TimestampLiteral(1))
            return ast.StartStop(operand, start, stop)
        raise PatternError(f"unsupported observation expression in {self.text!r}")

    # comparison level -------------------------------------------------------------------

    def comparison_or(self, ctx: P.ComparisonExpressionContext) -> ast.CompNode:
        first, rights = _operands(ctx, lambda c: c.comparisonExpression())
        nodes = [self.comparison_and(first.comparisonExpressionAnd())]
        nodes += [self.comparison_or(r) for r in rights]
        return _chained(nodes, ast.CompOr)

    def comparison_and(self, ctx: P.ComparisonExpressionAndContext) -> ast.CompNode:
        first, rights = _operands(ctx, lambda c: c.comparisonExpressionAnd())
        nodes = [self.prop_test(first.propTest())]
        nodes += [self.comparison_and(r) for r in rights]
        return _chained(nodes, ast.CompAnd)

    def prop_test(self, ctx: Any) -> ast.CompNode:
        if isinstance(ctx, P.PropTestParenContext):
            return self.comparison_or(ctx.comparisonExpression())
        negated = ctx.NOT() is not None
        path = self.object_path(ctx.objectPath())
        operator: str
        value: Any
        if isinstance(ctx, P.PropTestEqualContext):
            operator = "=" if ctx.EQ() else "!="
            value = literal_value(_first_terminal(ctx.primitiveLiteral()))
        elif isinstance(ctx, P.PropTestOrderContext):
            op = ctx.GT() or ctx.LT() or ctx.GE() or ctx.LE()
            operator = op.getText()
            value = literal_value(_first_terminal(ctx.orderableLiteral()))
        elif isinstance(ctx, P.PropTestSetContext):
            operator = "IN"
            value = self.set_literal(ctx.setLiteral())
        elif isinstance(ctx, P.PropTestLikeContext):
            operator = "LIKE"
            value = _string(ctx.StringLiteral().getText())
            compile_like(value)
        elif isinstance(ctx, P.PropTestRegexContext):
            operator = "MATCHES"
            value = _string(ctx.StringLiteral().getText())
            try:
                compile_matches(value)
            except ValueError as exc:
                raise PatternError(f"invalid STIX pattern {self.text!r}: {exc}") from None
        elif isinstance(ctx, P.PropTestIsSubsetContext | P.PropTestIsSupersetContext):
            operator = "ISSUBSET" if isinstance(ctx, P.PropTestIsSubsetContext) else "ISSUPERSET"
            value = _string(ctx.StringLiteral().getText())
            if operator == "ISSUBSET" and "/" not in value:
                raise PatternError(
                    f"invalid STIX pattern {self.text!r}: ISSUBSET needs a CIDR block "
                    f"such as '10.0.0.0/8', got {value!r}"
                )
            if parse_network(value) is None:
                raise PatternError(
                    f"invalid STIX pattern {self.text!r}: {operator} needs an IPv4 or IPv6 "
                    f"address or CIDR block, got {value!r}"
                )
        elif isinstance(ctx, P.PropTestExistsContext):
            operator = "EXISTS"
            value = None
        else:  # pragma: no cover - the grammar has no other property tests
            raise PatternError(f"unsupported comparison in {self.text!r}: {ctx.getText()}")
        atom = ast.Comparison(path, operator, value, negated)
        self.atoms.append(atom)
        return atom

    def set_literal(self, ctx: P.SetLiteralContext) -> tuple[Any, ...]:
        values = [literal_value(_first_terminal(lit)) for lit in ctx.primitiveLiteral()]
        kinds = {_kind(v) for v in values}
        if len(kinds) > 1:
            raise PatternError(
                f"invalid STIX pattern {self.text!r}: the values of a set must share one type, "
                f"got {ctx.getText()}"
            )
        return tuple(values)

    def object_path(self, ctx: P.ObjectPathContext) -> ast.ObjectPath:
        type_token = ctx.objectType().getChild(0)
        first = ctx.firstPathComponent()
        steps: list[ast.Step] = [
            first.IdentifierWithoutHyphen().getText()
            if first.IdentifierWithoutHyphen()
            else _string(first.StringLiteral().getText())
        ]
        component = ctx.objectPathComponent()
        if component is not None:
            self._path_steps(component, steps)
        return ast.ObjectPath(type_token.getText(), tuple(steps))

    def _path_steps(self, ctx: Any, out: list[ast.Step]) -> None:
        if isinstance(ctx, P.PathStepContext):
            for sub in ctx.objectPathComponent():
                self._path_steps(sub, out)
        elif isinstance(ctx, P.KeyPathStepContext):
            if ctx.IdentifierWithoutHyphen():
                out.append(ctx.IdentifierWithoutHyphen().getText())
            else:
                out.append(_string(ctx.StringLiteral().getText()))
        elif isinstance(ctx, P.IndexPathStepContext):
            if ctx.ASTERISK():
                out.append(ast.STAR)
            else:
                out.append(int((ctx.IntPosLiteral() or ctx.IntNegLiteral()).getText()))
        else:  # pragma: no cover
            raise PatternError(f"unsupported path step in {self.text!r}: {ctx.getText()}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__
