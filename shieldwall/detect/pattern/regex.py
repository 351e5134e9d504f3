"""LIKE and MATCHES as predicates that cannot backtrack catastrophically.

Both run on RE2 (google-re2), whose matching time is linear in the input: a shared indicator
with a pathological regular expression must not stall a member's pipeline. RE2 is not Python
`re`; the differences that matter for STIX patterns are listed in docs/patterns.md.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2

Predicate = Callable[[Any], bool]


def _nfc(text: str) -> str:
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text)


def _latin1_options() -> re2.Options:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.log_errors = False
    return options


def _utf8_options(dot_nl: bool = False) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.dot_nl = dot_nl
    return options


def _python_to_re2(regex: str) -> str:
    r"""Rewrite Python's `\Z` (end of text) to RE2's spelling `\z`; nothing else differs in syntax
    that both accept."""
    out = []
    i = 0
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            out.append("\\z" if nxt == "Z" else c + nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


@lru_cache(maxsize=4096)
def compile_matches(regex: str) -> Predicate:
    """The MATCHES test: an unanchored search, on strings and (where the spec allows) bytes.

    As in the reference, both the expression and a string value are NFC-normalised first,
    and a binary value is searched byte by byte when every character of the expression fits
    in one byte.
    """
    source = _python_to_re2(_nfc(regex))
    try:
        text_re = re2.compile(source, _utf8_options())
    except re2.error as exc:
        raise ValueError(
            f"MATCHES expression {regex!r} is not supported by the RE2 engine "
            f"(no backreferences or look-around): {exc}"
        ) from None
    bin_re = None
    try:
        bin_source = source.encode("latin-1")
    except UnicodeEncodeError:
        bin_source = None
    if bin_source is not None:
        try:
            bin_re = re2.compile(bin_source, _latin1_options())
        except re2.error:
            bin_re = None
    text_search = text_re.search
    bin_search = bin_re.search if bin_re is not None else None

    def matches(value: Any) -> bool:
        t = type(value)
        if t is str:
            return text_search(_nfc(value)) is not None
        if t is bytes and bin_search is not None:
            return bin_search(value) is not None
        return False

    return matches


def _like_regex(like: str) -> str:
    parts = []
    for c in like:
        if c == "%":
            parts.append(".*")
        elif c == "_":
            parts.append(".")
        else:
            parts.append(re2.escape(c))
    return "".join(parts)


@lru_cache(maxsize=4096)
def compile_like(like: str) -> Predicate:
    """The LIKE test: `%` is any run of characters (newlines included), `_` exactly one.

    RE2 matches in time linear in the value whatever the number of wildcards (a backtracking
    translation, as in the reference, takes exponential time on `%a%a%a…b`). The common
    indicator shapes ('%.evil.example', 'http://x/%', '%token%') avoid the regex
    engine altogether.
    """
    like = _nfc(like)
    body = like.strip("%")
    test: Callable[[str], bool]
    if "_" in like or "%" in body:
        try:
            full = re2.compile(_like_regex(like), _utf8_options(dot_nl=True)).fullmatch
        except re2.error as exc:  # RE2's 8 MiB program limit (some 100,000 wildcards)
            raise ValueError(f"LIKE {like[:40]!r}… is too large for the RE2 engine: {exc}"
                             ) from None

        def test(s: str) -> bool:
            return full(s) is not None
    else:
        lead, trail = like.startswith("%"), like.endswith("%") and len(like) > 1
        if lead and trail:
            def test(s: str) -> bool:
                return body in s
        elif lead:
            def test(s: str) -> bool:
                return s.endswith(body)
        elif trail:
            def test(s: str) -> bool:
                return s.startswith(body)
        else:
            def test(s: str) -> bool:
                return s == body

    binary_ok = all(ord(c) < 256 for c in like)

    def matches(value: Any) -> bool:
        t = type(value)
        if t is bytes:
            if not binary_ok:
                return False
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return False
        elif t is not str:
            return False
        return test(_nfc(value))

    return matches
