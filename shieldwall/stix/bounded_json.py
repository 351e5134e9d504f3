"""Bounded JSON: how every room parses JSON that comes from outside the node (imported
files, TAXII bodies, federation pages, telemetry lines), so that no input nests deeper
than STIX needs.

`MAX_DEPTH` is 64 levels of objects and arrays. The deepest inputs we meet are about 8:
a bundle's object's `extensions` holding an extension's dictionary of lists (bundle 1,
`objects` 2, object 3, `extensions` 4, extension 5, property 6, item 7), a MISP event's
objects' attributes' tags (7), an OSV record's affected ranges' events (8). 64 leaves
eight times that for producers' custom properties, and stays far below the 1,000 frames
of Python's recursion limit, so nothing stored can break a recursive reader later
(canonical JSON, validators, `copy.deepcopy`, templates).

Two ways in, one limit:

- `loads(data)`: orjson, then a walk of the containers when the text holds more than
  `MAX_DEPTH` brackets at all (a log line or an indicator never does: the walk costs
  nothing there; a 10,000-object page costs 8 ms of walk against 19 ms of parse).
  orjson refuses 1,024 levels itself, so the parse is bounded by the input's size.
- `DepthGuard(file)`: for streaming parsers (ijson), which have no limit: a 1.2 MB
  bundle nesting one object 200,000 levels drove ijson's prefix strings to 22 GB. The
  guard scans each chunk before the parser reads it, so the parser never sees a byte
  past the limit.

Both raise `TooDeep`, a `JSONDecodeError` (so a `ValueError`): code that already reports
malformed JSON reports this too.
"""

from __future__ import annotations

import array
import itertools
import re
from typing import IO, Any

import orjson

MAX_DEPTH = 64


class TooDeep(orjson.JSONDecodeError):
    """JSON nested deeper than the limit."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels", "", 0)
        self.limit = limit

    def __str__(self) -> str:
        return str(self.msg)


def loads(data: bytes | bytearray | memoryview | str, max_depth: int = MAX_DEPTH) -> Any:
    """`orjson.loads`, refusing (`TooDeep`) anything nested deeper than `max_depth`."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson's own, at 1,024
            raise TooDeep(max_depth) from None
        raise
    if _brackets(data) > max_depth:
        check_depth(value, max_depth)
    return value


def oversized(objs: list[Any], total: int, cap: int
              ) -> tuple[list[Any], list[tuple[Any, int]]]:
    """`objs` whose JSON is at most `cap` bytes, and the others with their size.
    Measured only when `total`, the bytes they arrived in, is over `cap` (a page of
    10,000 indicators is ~4 MB against a 16 MB cap, so the common page costs nothing);
    a caller refuses the others before validating or preparing them."""
    if total <= cap:
        return objs, []
    kept: list[Any] = []
    refused: list[tuple[Any, int]] = []
    for obj in objs:
        size = len(orjson.dumps(obj))
        if size > cap:
            refused.append((obj, size))
        else:
            kept.append(obj)
    return kept, refused


def _brackets(data: bytes | bytearray | memoryview | str) -> int:
    """How many `{` and `[` the text holds: at most that deep, whatever it is."""
    if isinstance(data, str):
        return data.count("{") + data.count("[")
    raw = data if isinstance(data, bytes | bytearray) else bytes(data)
    return raw.count(b"{") + raw.count(b"[")


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise `TooDeep` when parsed `value` nests containers deeper than `max_depth`
    (a scalar is depth 0, `[]` and `{}` are 1). Iterative: any depth is walked safely."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind is dict:
            items = node.values()
        elif kind is list:
            items = node
        else:
            continue
        if depth > max_depth:
            raise TooDeep(max_depth)
        for item in items:
            if type(item) is dict or type(item) is list:
                stack.append((item, depth + 1))


# ---- streaming --------------------------------------------------------------------------

_STRINGS = re.compile(rb'"[^"]*"')  # in text reduced to quotes and brackets
_NOT_STRUCTURE = bytes(i for i in range(256) if i not in b'"[]{}')
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class DepthScanner:
    """Nesting depth of JSON text fed in chunks, counted outside strings.

    Per chunk, all in C: escaped backslashes, then escaped quotes, are dropped (what is
    left of a run of backslashes after dropping pairs escapes the next byte, as JSON
    reads it); everything but quotes and brackets is dropped; the strings (now `"`,
    brackets, `"`) are dropped; the brackets left are structure. A string or a run of
    backslashes cut by the chunk's end is carried into the next chunk. Bytes of
    multi-byte UTF-8 characters are never ASCII, so they cannot be mistaken for any of
    these. ~260 MB/s on this project's machine, against ~90 MB/s for ijson's C backend
    building the objects (a 4 MB bundle of 10,000 indicators, measured).
    """

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        self.max_depth = max_depth
        self.depth = 0
        self._in_string = False
        self._held = b""  # a trailing run of backslashes, completed by the next chunk

    def feed(self, chunk: bytes) -> None:
        data = self._held + chunk if self._held else chunk
        kept = len(data.rstrip(b"\\"))
        self._held = data[kept:]
        if self._held:
            data = data[:kept]
        if b"\\" in data:
            data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        marks = data.translate(None, _NOT_STRUCTURE)
        if self._in_string:
            marks = b'"' + marks
        if marks.count(b'"') % 2:
            self._in_string = True
            marks += b'"'  # the open string ends the chunk: close it to drop it
        else:
            self._in_string = False
        # Adjacent quotes are an empty string, or the end of one and the start of the
        # next: dropping them leaves the brackets in or out of strings as they were.
        structure = _STRINGS.sub(b"", marks.replace(b'""', b""))
        opens = structure.count(b"[") + structure.count(b"{")
        if self.depth + opens > self.max_depth:
            signs = array.array("b", structure.translate(_SIGNS))
            if max(itertools.accumulate(signs, initial=self.depth)) > self.max_depth:
                raise TooDeep(self.max_depth)
        self.depth += 2 * opens - len(structure)


class DepthGuard:
    """A binary file whose bytes are checked by a `DepthScanner` before anyone reads
    them: hand it to ijson instead of the file."""

    def __init__(self, fh: IO[bytes], max_depth: int = MAX_DEPTH) -> None:
        self._fh = fh
        self._scanner = DepthScanner(max_depth)

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._scanner.feed(data)
        return data
