"""Sealed cursors: they open only for the context they were sealed for, under their key."""

from __future__ import annotations

import pytest

from shieldwall.store.cursors import CursorError, Cursors

KEY = bytes(range(32))


def test_a_cursor_opens_for_its_context_alone() -> None:
    c = Cursors(KEY)
    token = c.seal(123_456, "objects", "alice", ["indicator"])
    assert c.open(token, "objects", "alice", ["indicator"]) == 123_456
    assert Cursors(KEY).open(token, "objects", "alice", ["indicator"]) == 123_456  # restart
    for context in (("objects", "bob", ["indicator"]), ("manifest", "alice", ["indicator"]),
                    ("objects", "alice", ["malware"]), ("objects", "alice")):
        with pytest.raises(CursorError):
            c.open(token, *context)
    with pytest.raises(CursorError):
        Cursors(bytes(32)).open(token, "objects", "alice", ["indicator"])


def test_a_cursor_shows_nothing_and_resists_tampering() -> None:
    c = Cursors(KEY)
    a, b = c.seal(1, "x"), c.seal(1, "x")
    assert a != b and len(a) == len(b) == len(c.seal(2**62, "x"))
    for i in range(len(a)):
        flipped = a[:i] + ("A" if a[i] != "A" else "B") + a[i + 1:]
        with pytest.raises(CursorError):
            c.open(flipped, "x")
    for junk in ("", "garbage!", "czE6MTIz", a + "AA"):
        with pytest.raises(CursorError):
            c.open(junk, "x")
