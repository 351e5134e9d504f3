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


def test_large_columns_take_the_dictionary_paths() -> None:
    """5,000 rows (past the 4,096-row threshold): equality looked up per distinct value in
    the index's dict, addresses parsed per distinct value; the same rows as small tables."""
    from shieldwall.detect.index import IndicatorIndex

    from .test_index import ind

    ix = IndicatorIndex()
    dom = ind("[domain-name:value = 'evil.example']")
    sfx = ind("[domain-name:value LIKE '%.bad.example']")
    ip = ind("[ipv4-addr:value = '198.51.100.7']")
    for i in (dom, sfx, ip):
        assert ix.add(i) is None
    names = ["evil.example", "EVIL.example", "a.bad.example", None, "good.example"]
    addrs = ["198.51.100.7", "198.51.100.70", None, "2001:db8::1", "10.0.0.1"]
    table = pa.table({"domain-name:value": [names[i % 5] for i in range(5000)],
                      "network-traffic:dst_ref.value": [addrs[i % 7 % 5] for i in range(5000)]})
    got = {(c.row, c.indicator.name) for c in ix.candidates(table)}
    want = ({(r, dom["name"]) for r in range(0, 5000, 5)}
            | {(r, sfx["name"]) for r in range(2, 5000, 5)}
            | {(r, ip["name"]) for r in range(5000) if r % 7 % 5 == 0})
    assert got == want
