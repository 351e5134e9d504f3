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
from shieldwall.detect.pattern.regex import compile_like, compile_matches
from shieldwall.detect.pattern.values import parse_network, parse_timestamp

_UNESCAPE = re.compile(r"\\(['\\])")


class _TreeGrab:
    """The OASIS Pattern keeps its parse tree private; its visit() hands it to us."""

    def visit(self, tree: Any) -> Any:
        return tree


def parse(text: str) -> ast.Pattern:
    """Parse and check a pattern; PatternError (a ValueError) says why it is unusable."""
    if not isinstance(text, str):
        raise PatternError(f"a STIX pattern is a string, not {type(text).__name__}")
    try:
        tree = _OasisPattern(text).visit(_TreeGrab())
    except ParseException as exc:
        raise PatternError(f"invalid STIX pattern {text!r}: {exc}") from None
    builder = _Builder(text)
    try:
        root = builder.observation_expressions(tree.observationExpressions())
    except PatternError:
        raise
    except (ValueError, binascii.Error) as exc:
        raise PatternError(f"invalid STIX pattern {text!r}: {exc}") from None
    return ast.Pattern(
        text=text, root=root, atoms=tuple(builder.atoms), leaves=tuple(builder.leaves)
    )


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
        self.text = text
        self.atoms: list[ast.Comparison] = []
        self.leaves: list[ast.Observation] = []

    # observation level ------------------------------------------------------------------

    def observation_expressions(self, ctx: P.ObservationExpressionsContext) -> ast.ObsNode:
        subs = ctx.observationExpressions()
        if subs:
            left = self.observation_expressions(subs[0])
            return ast.FollowedBy(left, self.observation_expressions(subs[1]))
        return self.observation_or(ctx.observationExpressionOr())

    def observation_or(self, ctx: P.ObservationExpressionOrContext) -> ast.ObsNode:
        subs = ctx.observationExpressionOr()
        if subs:
            left = self.observation_or(subs[0])
            return ast.ObsOr(left, self.observation_or(subs[1]))
        return self.observation_and(ctx.observationExpressionAnd())

    def observation_and(self, ctx: P.ObservationExpressionAndContext) -> ast.ObsNode:
        subs = ctx.observationExpressionAnd()
        if subs:
            left = self.observation_and(subs[0])
            return ast.ObsAnd(left, self.observation_and(subs[1]))
        return self.observation(ctx.observationExpression())

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
        subs = ctx.comparisonExpression()
        if subs:
            return ast.CompOr(self.comparison_or(subs[0]), self.comparison_or(subs[1]))
        return self.comparison_and(ctx.comparisonExpressionAnd())

    def comparison_and(self, ctx: P.ComparisonExpressionAndContext) -> ast.CompNode:
        subs = ctx.comparisonExpressionAnd()
        if subs:
            return ast.CompAnd(self.comparison_and(subs[0]), self.comparison_and(subs[1]))
        return self.prop_test(ctx.propTest())

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
