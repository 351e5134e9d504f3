"""STIX 2.1 patterning: parse with the OASIS grammar, evaluate with the Part 5 semantics.

`compile_pattern(text)` gives a CompiledPattern (`.matches(observed)`, `.explain(observed)`,
`.atoms`); `matches(text, observed)` is the one-call form. Differences from the OASIS
reference matcher are listed, with reasons, in docs/patterns.md.
"""

from shieldwall.detect.pattern.ast import STAR, Comparison, ObjectPath, PatternError
from shieldwall.detect.pattern.compiled import (
    CompiledPattern,
    Hit,
    Result,
    compile_pattern,
    matches,
)
from shieldwall.detect.pattern.observations import ObservationSet
from shieldwall.detect.pattern.parse import parse

__all__ = [
    "STAR",
    "Comparison",
    "CompiledPattern",
    "Hit",
    "ObjectPath",
    "ObservationSet",
    "PatternError",
    "Result",
    "compile_pattern",
    "matches",
    "parse",
]
