"""Looking at a file before importing it: gzip, binary garbage, the first JSON character."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import BinaryIO

from shieldwall.ingest.base import ImportError_

_GZIP_MAGIC = b"\x1f\x8b"


def open_maybe_gzip(path: Path) -> BinaryIO:
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    if fh.read(2) == _GZIP_MAGIC:
        fh.close()
        return io.BufferedReader(gzip.open(path, "rb"))  # type: ignore[arg-type]
    fh.seek(0)
    return fh


def head_of(path: Path, size: int = 8192) -> bytes:
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    with open_maybe_gzip(path) as fh:
        try:
            return fh.read(size)
        except (OSError, EOFError) as exc:
            raise ImportError_(f"{path}: unreadable: {exc}") from None


def looks_binary(head: bytes) -> bool:
    """NUL bytes or text that is not UTF-8: not something an analyst meant to import."""
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start < len(head) - 4
    return False


def first_json_char(head: bytes) -> str:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return chr(text[0]) if text else ""
