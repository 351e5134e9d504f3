"""The parsed form of a STIX 2.1 pattern: plain, immutable data.

Nodes carry no behaviour beyond rendering themselves back to pattern text, so that the index,
the evaluator and the explanation all read the same tree and a node can be a dictionary key.
"""

from __future__ import annotations

import base64
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from shieldwall.errors import ShieldwallError


class PatternError(ShieldwallError, ValueError):
    """A pattern that cannot be used; the message names the pattern and the reason.

    A ValueError too, because callers of `matches()` were promised one for invalid patterns.
    """


class _Star:
    """The `[*]` path step: one object, so paths compare and hash by identity."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STAR"


STAR = _Star()

Step = str | int | _Star


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_identifier(text: str) -> bool:
    return bool(text) and (text[0].isalpha() or text[0] == "_") and all(
        c.isalnum() or c == "_" for c in text
    ) and text.isascii()


@dataclass(frozen=True, slots=True)
class ObjectPath:
    """`object_type:step.step[0][*]`; steps are keys (str), list indexes (int) or STAR."""

    object_type: str
    steps: tuple[Step, ...]

    @property
    def property_path(self) -> str:
        """The path after the colon, as written in a pattern."""
        out = []
        for i, step in enumerate(self.steps):
            if isinstance(step, _Star):
                out.append("[*]")
            elif isinstance(step, int):
                out.append(f"[{step}]")
            else:
                key = step if _is_identifier(step) else _quote(step)
                out.append(key if i == 0 else "." + key)
        return "".join(out)

    def __str__(self) -> str:
        return f"{self.object_type}:{self.property_path}"


def render_literal(value: Any) -> str:
    """Pattern text for a literal value (bytes render as b'…' whatever they were written as)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bytes):
        return "b'" + base64.standard_b64encode(value).decode("ascii") + "'"
    if isinstance(value, _dt.datetime):
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        return f"t'{text}Z'"
    if isinstance(value, tuple):
        return "(" + ", ".join(render_literal(v) for v in value) + ")"
    return repr(value)


# -- comparison expressions (inside one `[...]`) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """One comparison atom, e.g. `ipv4-addr:value ISSUBSET '10.0.0.0/8'`.

    This is also the unit a candidate index keys on: (object type, property path, operator,
    value, negated). `value` is the decoded Python value (str, int, float, bool, bytes,
    timezone-aware datetime), a tuple of them for IN, None for EXISTS.
    """

    path: ObjectPath
    operator: str  # "=", "!=", "<", ">", "<=", ">=", "IN", "LIKE", "MATCHES",
    # "ISSUBSET", "ISSUPERSET", "EXISTS"
    value: Any
    negated: bool = False

    @property
    def object_type(self) -> str:
        return self.path.object_type

    @property
    def property_path(self) -> str:
        return self.path.property_path

    def __str__(self) -> str:
        neg = "NOT " if self.negated else ""
        if self.operator == "EXISTS":
            return f"{neg}EXISTS {self.path}"
        return f"{self.path} {neg}{self.operator} {render_literal(self.value)}"


@dataclass(frozen=True, slots=True)
class CompAnd:
    """Both sides must hold for the same root object (the spec's rule for `AND` in `[...]`)."""

    left: CompNode
    right: CompNode

    def __str__(self) -> str:
        return f"{_paren_comp(self.left, CompOr)} AND {_paren_comp(self.right, CompOr)}"


@dataclass(frozen=True, slots=True)
class CompOr:
    left: CompNode
    right: CompNode

    def __str__(self) -> str:
        return f"{self.left} OR {self.right}"


CompNode = Comparison | CompAnd | CompOr


def _paren_comp(node: CompNode, weaker: type) -> str:
    return f"({node})" if isinstance(node, weaker) else str(node)


# -- observation expressions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """`[ comparison expression ]`: one observation whose objects satisfy the expression.

    `leaf` numbers the observation expressions of a pattern from 0, left to right, so an
    explanation can say which `[...]` an observed-data was bound to.
    """

    expression: CompNode
    leaf: int = 0

    def __str__(self) -> str:
        return f"[{self.expression}]"


@dataclass(frozen=True, slots=True)
class ObsAnd:
    left: ObsNode
    right: ObsNode

    def __str__(self) -> str:
        return f"{_paren_obs(self.left)} AND {_paren_obs(self.right)}"


@dataclass(frozen=True, slots=True)
class ObsOr:
    left: ObsNode
    right: ObsNode

    def __str__(self) -> str:
        return f"{_paren_obs(self.left)} OR {_paren_obs(self.right)}"


@dataclass(frozen=True, slots=True)
class FollowedBy:
    left: ObsNode
    right: ObsNode

    def __str__(self) -> str:
        return f"{_paren_obs(self.left)} FOLLOWEDBY {_paren_obs(self.right)}"


@dataclass(frozen=True, slots=True)
class Within:
    operand: ObsNode
    seconds: float

    def __str__(self) -> str:
        return f"{_paren_obs(self.operand)} WITHIN {self.seconds!r} SECONDS"


@dataclass(frozen=True, slots=True)
class Repeats:
    operand: ObsNode
    times: int

    def __str__(self) -> str:
        return f"{_paren_obs(self.operand)} REPEATS {self.times} TIMES"


@dataclass(frozen=True, slots=True)
class StartStop:
    operand: ObsNode
    start: _dt.datetime
    stop: _dt.datetime

    def __str__(self) -> str:
        return (
            f"{_paren_obs(self.operand)} START {render_literal(self.start)}"
            f" STOP {render_literal(self.stop)}"
        )


ObsNode = Observation | ObsAnd | ObsOr | FollowedBy | Within | Repeats | StartStop


def _paren_obs(node: ObsNode) -> str:
    return str(node) if isinstance(node, Observation) else f"({node})"


@dataclass(frozen=True, slots=True)
class Pattern:
    """A whole parsed pattern: its text, its tree, and its atoms in source order."""

    text: str
    root: ObsNode
    atoms: tuple[Comparison, ...] = field(default=())
    leaves: tuple[Observation, ...] = field(default=())
