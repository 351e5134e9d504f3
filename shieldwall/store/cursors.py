"""Cursors handed to readers: opaque, bound to the reader and its query.

A page's cursor says where the next page starts: a position in the store's one global
sequence (`seq`), which numbers every version stored, whoever may read it. Handed out as
is, two cursors tell a reader how many objects it may not see were stored between them,
and how fast. So a cursor is that position sealed with AES-GCM under a key of the node's
(`keys.node_key`), with the reader and its query as associated data: it reads as random
bytes (a fresh nonce every time, one length for every position), and it opens only for
the same reader asking the same query. A cursor replayed by another reader, for another
query, altered, or sealed under another key is refused (`CursorError`), never read.
"""

from __future__ import annotations

import base64
import binascii
import os

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shieldwall.errors import ShieldwallError

_FORMAT = b"\x01"  # the first byte: which sealing this is, so it can change later
_NONCE = 12
_SEQ = 8
_TAG = 16
_LENGTH = len(_FORMAT) + _NONCE + _SEQ + _TAG


class CursorError(ShieldwallError):
    """A cursor this node did not hand to this reader for this query."""


class Cursors:
    """Seal and open cursors with one key (32 bytes; the same for every process of a node,
    so that a cursor survives a restart and works on any worker)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, seq: int, *context: object) -> str:
        """The cursor for position `seq`, for the reader and query named by `context`."""
        nonce = os.urandom(_NONCE)
        body = self._aead.encrypt(nonce, seq.to_bytes(_SEQ, "big"), _bound(context))
        return _text(_FORMAT + nonce + body)

    def open(self, token: str, *context: object) -> int:
        """The position sealed in `token`, when it was sealed for this `context`."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise CursorError("not a cursor") from None
        # The canonical spelling only (base64 leaves a few bits of the last character
        # unused): one cursor, one text.
        if len(raw) != _LENGTH or raw[:1] != _FORMAT or _text(raw) != token:
            raise CursorError("not a cursor")
        nonce, body = raw[1:1 + _NONCE], raw[1 + _NONCE:]
        try:
            plain = self._aead.decrypt(nonce, body, _bound(context))
        except InvalidTag:
            raise CursorError("not a cursor handed to this reader for this query") from None
        return int.from_bytes(plain, "big")


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bound(context: tuple[object, ...]) -> bytes:
    """The associated data: one unambiguous encoding of the context (JSON)."""
    return orjson.dumps(["shieldwall-cursor", *context], option=orjson.OPT_NON_STR_KEYS)
