"""STIX 2.1 bundles, single objects, and JSON arrays of objects.

Files up to `_WHOLE_FILE_LIMIT` are parsed at once with orjson (fastest); larger ones
are streamed object by object with ijson's C backend so that a 1 GB bundle or a
million objects run in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson
import orjson

from shieldwall.ingest.base import (
    Format,
    ImportError_,
    Item,
    ReadOptions,
    Rejected,
    register_format,
)
from shieldwall.ingest.sniff import first_json_char, open_maybe_gzip

_WHOLE_FILE_LIMIT = 64 * 1024 * 1024


def read_stix(path: Path, opts: ReadOptions) -> Iterator[Item]:
    size = path.stat().st_size
    if size <= _WHOLE_FILE_LIMIT and not path.name.endswith(".gz"):
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ImportError_(f"{path}: malformed JSON: {exc}") from None
        yield from _items(data, path)
        return
    yield from _stream(path)


def _items(data: Any, path: Path) -> Iterator[Item]:
    if isinstance(data, dict) and data.get("type") == "bundle":
        objects = data.get("objects", [])
        if not isinstance(objects, list):
            raise ImportError_(f"{path}: bundle 'objects' is not a list")
        for obj in objects:
            yield obj if isinstance(obj, dict) else Rejected("bundle", "entry is not a JSON object")
    elif isinstance(data, dict) and "type" in data:
        yield data
    elif isinstance(data, list):
        for obj in data:
            yield obj if isinstance(obj, dict) else Rejected("array", "entry is not a JSON object")
    else:
        raise ImportError_(f"{path}: JSON but not STIX (no bundle, object or array of objects)")


def _stream(path: Path) -> Iterator[Item]:
    with open_maybe_gzip(path) as fh:
        head = fh.peek(65536)[:65536] if hasattr(fh, "peek") else b""
        prefix = "objects.item" if first_json_char(head) == "{" else "item"
        try:
            for obj in ijson.items(fh, prefix, use_float=True):
                yield obj if isinstance(obj, dict) else Rejected(prefix, "entry is not an object")
        except ijson.JSONError as exc:
            raise ImportError_(f"{path}: malformed JSON: {exc}") from None


def _sniff(head: bytes, path: Path) -> bool:
    return first_json_char(head) in ("{", "[")


FORMAT = register_format(
    Format("stix", "STIX 2.1 bundle, object, or array of objects", read_stix, _sniff)
)
