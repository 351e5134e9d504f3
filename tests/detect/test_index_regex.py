"""The joined Hyperscan scan of a batch's distinct values against one scan per value."""

from __future__ import annotations

import hyperscan
import pyarrow as pa
import pytest

from shieldwall.detect.index import _joinable, _Regexes

# (expression, whether a joined scan may report extra values: a class that matches a newline)
EXPRS = [
    (r"^https?://m1\.example/", False),
    (r"login\.php\?", False),
    (r"^exact$", False),
    (r"^a|b$", False),
    (r"(?i)^CASE", False),  # an inline flag before `^`: scanned per value
    (r"\Astart", False),
    (r"end\z", False),
    (r"x[^/]*y", True),
    (r"[\^$]lit", False),
    (r"a\$$", False),
    (r"^$", False),
    (r"q*", False),  # matches the empty string everywhere: floods the joined scan
]
VALUES = [b"https://m1.example/x", b"http://m10.example/", b"/login.php?a=1", b"exact",
          b"exact ", b"a-b", b"zb", b"CASE1", b"start-end", b"x", b"y", b"^lit", b"a$",
          b"", b"line\nexact", b"x\n", b"ends with end", b"nothing", b"xx/y", b"nul\0exact",
          b"exact\n", b"z" * 3000]


def reference(expr: str, value: bytes) -> bool:
    """One expression, one value, SINGLEMATCH: what the index did before joining."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[expr.encode()], ids=[0],
               flags=[hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
                      | hyperscan.HS_FLAG_UTF8])
    hit: list[int] = []
    db.scan(value, match_event_handler=lambda *a: hit.append(1))
    return bool(hit)


@pytest.mark.parametrize("with_flood", [False, True])
def test_joined_scan_finds_every_per_value_match(with_flood: bool) -> None:
    exprs = [e for e in EXPRS if with_flood or e[0] != "q*"]
    rx = _Regexes(entries={k: e for k, (e, _) in enumerate(exprs)})
    got = rx.scan_values(pa.array([*VALUES, None], pa.binary()))
    assert rx.noisy is with_flood  # the empty-matching expression stops the joined scan
    for k, (expr, may_span) in enumerate(exprs):
        want = {i for i, v in enumerate(VALUES) if reference(expr, v)}
        have = {i for i, keys in got.items() if k in keys}
        assert want <= have, expr
        if not may_span or with_flood:  # a newline or NUL may add some
            plain = {i for i, v in enumerate(VALUES) if b"\n" not in v and b"\0" not in v}
            assert have & plain == want & plain, expr
    assert all(len(keys) == len(set(keys)) for keys in got.values())


def test_only_edge_anchors_are_rewritten() -> None:
    assert _joinable("^a.b$") == r"\na.b\x00"
    assert _joinable(r"[^$]x\$") == r"[^$]x\$"
    assert _joinable(r"[]^]x") == r"[]^]x"
    assert _joinable("a^b") is None
    assert _joinable("a$|b") is None
    assert _joinable(r"\Aa") is None
    assert _joinable("(?m)^a") is None
