"""Validation of STIX 2.1 objects against the OASIS JSON schemas, at import speed.

The OASIS `stix2-validator` takes about 7 ms an object on our machine (about 140
objects/s): an import of 100,000 indicators would take twelve minutes. We validate
against the very schemas it ships (`stix2validator/schemas-2.1`), compiled once with
jsonschema-rs, about 9 µs an object, and check indicator patterns with the OASIS
`stix2-patterns` grammar. The grammar's ANTLR parser costs about 1 ms a pattern, so
the overwhelmingly common shape, one or more `[type:path = 'literal']` comparisons
joined by OR, is recognised by a strict regular expression that accepts only a subset
of the grammar; everything else goes through the ANTLR parser, with a cache.

What this does not check, that `stix2-validator` does: its "should" best practices
and a few "must" rules not expressible in JSON schema (e.g. that `modified` is not
before `created`, which we check here, and vocabulary warnings). `validate_strict()`
runs the full OASIS validator for callers who prefer that to speed.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from shieldwall.stix.respond_types import SCHEMAS as RESPOND_SCHEMAS
from shieldwall.stix.timestamps import parse_ts

# Located without importing stix2validator, whose import costs seconds at CLI start.
_SCHEMA_ROOT = (
    Path(importlib.util.find_spec("stix2validator").origin).parent  # type: ignore[arg-type,union-attr]
    / "schemas-2.1" / "schemas"
)
_SCHEMA_DIRS = ("sdos", "sros", "observables", "common")

# One comparison of the simplest shape; the literal follows the grammar's StringLiteral.
_PATH = r"[a-z0-9][a-z0-9-]*:[a-z0-9_]+(?:\.(?:[a-z0-9_]+|'[A-Za-z0-9_-]+'))*"
# The literal as an unrolled loop (runs of plain characters, then one escape): the
# same language as `(?:[^'\\]|\\['\\])*`, without one alternation per character.
_CMP = rf"\[{_PATH} = '[^'\\]*+(?:\\['\\][^'\\]*+)*+'\]"
_SIMPLE_PATTERN = re.compile(rf"^{_CMP}(?: OR {_CMP})*$")


def _load(path: Path) -> dict[str, Any]:
    data = orjson.loads(path.read_bytes())
    data["$id"] = path.as_uri()
    return data


def _retrieve(uri: str) -> dict[str, Any]:
    if not uri.startswith("file://"):
        raise ValueError(f"schema reference outside the bundled schemas: {uri}")
    return _load(Path(uri[len("file://"):]))


# The node's own custom types: the properties its readers (the dashboard, `pledge`) rely
# on, checked on top of the OASIS core rules wherever outside JSON comes in (TAXII POST,
# federation, import), so that a snapshot whose index is text cannot be stored.
_CUSTOM_SCHEMAS: dict[str, dict[str, Any]] = {
    "x-shieldwall-posture": {
        "required": ["x_shieldwall_member", "x_shieldwall_date", "x_shieldwall_index"],
        "properties": {
            "x_shieldwall_member": {"type": "string", "minLength": 1},
            "x_shieldwall_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            "x_shieldwall_index": {"type": "number", "minimum": 0, "maximum": 100},
            "x_shieldwall_commitments": {
                "type": "object", "additionalProperties": {"type": ["number", "null"]}},
            "x_shieldwall_checks": {
                "type": "object",
                "additionalProperties": {
                    "type": "object", "properties": {"score": {"type": ["number", "null"]}}}},
            "x_shieldwall_cis_ig1": {"type": "object"},
        },
    },
    # Rapid reaction: the Incident Core SDOs (event, task, impact) and Shieldwall's own.
    **RESPOND_SCHEMAS,
}


@functools.lru_cache(maxsize=1_024)
def _validator_for(stix_type: str) -> Any:
    """The compiled schema for `stix_type`. Bounded, and shared by schema file: a
    federation peer can send any number of distinct custom types, and compiling a schema
    per type costs ~9 ms and ~1 MB that would otherwise be held for the life of the node."""
    if stix_type in _CUSTOM_SCHEMAS:
        return _compiled_custom(stix_type)
    path = _schema_files().get(stix_type)
    if path is None:
        # Custom objects (x-...) and types the schemas do not know: the common core rules.
        path = _SCHEMA_ROOT / "common" / "core.json"
    return _compiled(path)


@functools.cache
def _schema_files() -> dict[str, Path]:
    """Type name -> its schema; a name is looked up here, never joined into a path."""
    files = {t: _SCHEMA_ROOT / "common" / f"{t}.json"
             for t in ("marking-definition", "extension-definition", "language-content")}
    for folder in reversed(_SCHEMA_DIRS[:3]):  # the first folder that has it wins
        files.update({f.stem: f for f in (_SCHEMA_ROOT / folder).glob("*.json")})
    return files


@functools.cache
def _compiled(path: Path) -> Any:
    return jsonschema_rs.Draft202012Validator(_load(path), retriever=_retrieve)


@functools.cache
def _compiled_custom(stix_type: str) -> Any:
    core = (_SCHEMA_ROOT / "common" / "core.json").as_uri()
    schema = {"allOf": [{"$ref": core}, {"type": "object", **_CUSTOM_SCHEMAS[stix_type]}]}
    return jsonschema_rs.Draft202012Validator(schema, retriever=_retrieve)


def pattern_error(pattern: str) -> str | None:
    """None when a STIX pattern is valid per the OASIS grammar, else the parser's reason."""
    if _SIMPLE_PATTERN.match(pattern):
        return None
    return _grammar_error(pattern)


@functools.lru_cache(maxsize=4_096)
def _grammar_error(pattern: str) -> str | None:
    from stix2patterns.validator import run_validator

    try:
        errors = run_validator(pattern, stix_version="2.1")
    except Exception as exc:  # the ANTLR runtime raises on some malformed input
        return f"pattern does not parse: {exc}"
    return "; ".join(errors) if errors else None


def object_error(obj: Any) -> str | None:
    """None for a valid STIX 2.1 object, else one line saying what is wrong."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    stix_type = obj.get("type")
    if not isinstance(stix_type, str) or not stix_type:
        return "missing 'type'"
    if obj.get("spec_version", "2.1") != "2.1" and stix_type != "bundle":
        return f"spec_version {obj.get('spec_version')!r} is not 2.1"
    validator = _validator_for(stix_type)
    if validator.is_valid(obj):
        pass  # the common case; collecting errors costs a third more
    else:
        err = next(iter(validator.iter_errors(obj)))
        where = "/".join(str(p) for p in err.instance_path)
        return f"{where + ': ' if where else ''}{_short(err.message)}"
    created, modified = obj.get("created"), obj.get("modified")
    # Equal texts are the same instant (the common case: a first version): no parsing.
    if isinstance(created, str) and isinstance(modified, str) and created != modified:
        try:
            earlier = parse_ts(modified) < parse_ts(created)
        except ValueError as exc:  # the schema's pattern admits e.g. February 30th
            return str(exc)
        if earlier:
            return "modified is earlier than created"
    if stix_type == "indicator" and obj.get("pattern_type") == "stix":
        pattern = obj.get("pattern", "")
        if type(pattern) is str and _SIMPLE_PATTERN.match(pattern):
            return None
        err = pattern_error(str(pattern))
        if err:
            return f"pattern: {err}"
    return None


def validate_strict(obj: dict[str, Any]) -> str | None:
    """The full OASIS stix2-validator (slow: milliseconds an object)."""
    from stix2validator import ValidationOptions, validate_instance

    result = validate_instance(obj, ValidationOptions(version="2.1"))
    if result.is_valid:
        return None
    return "; ".join(str(e.message) for e in result.errors[:3])


def _short(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


Validator = Callable[[Any], str | None]
