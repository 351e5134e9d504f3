"""Text that goes into a sensor's file from a shared indicator, made harmless there.

An indicator's name, id and value come from whoever shared it. Each output either writes a
value exactly (after checking it is of its kind's shape, `forms`) or refuses it; free text
(a name) is reduced to characters that cannot end a field, a record or a rule option in any
of the formats written here.
"""

from __future__ import annotations

import re

_ID = re.compile(r"indicator--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UNSAFE = re.compile(r"[^A-Za-z0-9 .,_:/+=@()#-]+")


def safe_id(indicator_id: str) -> bool:
    """A STIX indicator id in its one legal shape (nothing else is written as an id)."""
    return _ID.fullmatch(indicator_id) is not None


_PLAIN = re.compile(r"[A-Za-z0-9 .,_:/+=@()#-]*")  # no nested repetition: linear


def plain(text: str, limit: int = 120) -> str:
    """`text` with every character outside a small printable ASCII set turned into one
    space (tabs, newlines, quotes, semicolons, pipes, backslashes, non-ASCII), trimmed."""
    if _PLAIN.fullmatch(text) and "  " not in text:  # already plain (most names)
        return text[:limit].strip()
    out = " ".join(_UNSAFE.sub(" ", text).split())
    return out[:limit].strip()


def reason_line(indicator_id: str, reason: str) -> str:
    """One line of a `skipped.tsv`: id, tab, reason (both made plain)."""
    return f"{indicator_id if safe_id(indicator_id) else '-'}\t{plain(reason, 300) or '-'}\n"
