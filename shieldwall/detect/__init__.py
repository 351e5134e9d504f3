"""Detection: shared indicators matched against a member's telemetry.

The pattern engine is re-exported here because every other part of detection (the index,
the readers' consumers, sightings) speaks in its terms.
"""

from shieldwall.detect.pattern import (
    CompiledPattern,
    ObservationSet,
    PatternError,
    Result,
    compile_pattern,
    matches,
)

__all__ = [
    "CompiledPattern",
    "ObservationSet",
    "PatternError",
    "Result",
    "compile_pattern",
    "matches",
]
