"""The fast compile path and the direct evaluation of simple patterns, against the full grammar
and the exact evaluator; the column-wise address parsing against `ipaddress`."""

from __future__ import annotations

import contextlib
import ipaddress
import random

import pyarrow as pa
import pytest

from shieldwall.detect import matches
from shieldwall.detect.exact import _fast_triggers, grammar_triggers, triggers
from shieldwall.detect.hunt import Hunter
from shieldwall.detect.index import IndicatorIndex, ipv4_ints
from shieldwall.detect.readers.base import LINE, TS, Observations
from shieldwall.detect.sightings import Sightings
from shieldwall.stix.markings import TLP

PATHS = ["ipv4-addr:value", "ipv6-addr:value", "domain-name:value", "url:value",
         "file:hashes.'SHA-256'", "file:hashes.'MD5'", "file:hashes.MD5", "file:name",
         "network-traffic:dst_ref.value", "email-addr:value", "x-custom-obj:a_b.'c-d'.e"]
LITERALS = ["198.51.100.7", "10.1.2.3", "2001:db8::1", "evil.example", "Evil.Example",
            "http://x/", "it's", "back\\slash", "", "a b", "0" * 64, "%.x", "01.2.3.4",
            "é.example"]


def _lit(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _comparison(rng: random.Random, path: str | None = None) -> str:
    path = path or rng.choice(PATHS)
    op = rng.choice(["=", "=", "IN", "ISSUBSET", "LIKE"])
    if op == "IN":
        vals = rng.sample(LITERALS, rng.randint(1, 3))
        return f"{path} IN (" + rng.choice([", ", ","]).join(_lit(v) for v in vals) + ")"
    if op == "ISSUBSET":
        return f"{path} ISSUBSET {_lit(rng.choice(['10.0.0.0/8', '2001:db8::/32']))}"
    if op == "LIKE":
        return f"{path} LIKE {_lit('%.' + rng.choice(LITERALS))}"
    return f"{path} = {_lit(rng.choice(LITERALS))}"


def simple_patterns(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["[" + " OR ".join(_comparison(rng) for _ in range(rng.randint(1, 3))) + "]"
            for _ in range(n)]


def and_patterns(n: int, seed: int) -> list[str]:
    """OR of AND-groups, each group on one object type, some comparisons with integers."""
    rng = random.Random(seed)
    by_type = {"network-traffic": ["network-traffic:dst_ref.value", "network-traffic:src_ref.value",
                                   "network-traffic:dst_port"],
               "domain-name": ["domain-name:value"], "file": ["file:hashes.'SHA-256'",
                                                          "file:name"]}
    out = []
    for _ in range(n):
        groups = []
        for _ in range(rng.randint(1, 2)):
            paths = by_type[rng.choice(list(by_type))]
            terms = []
            for _ in range(rng.randint(1, 3)):
                path = rng.choice(paths)
                if path.endswith("_port"):
                    terms.append(f"{path} {rng.choice(['=', '!=', '<', '>='])} "
                                 f"{rng.choice([443, 80, 0])}")
                else:
                    terms.append(_comparison(rng, path))
            groups.append(" AND ".join(terms))
        out.append("[" + " OR ".join(groups) + "]")
    return out


@pytest.mark.parametrize("pattern", and_patterns(200, 5))
def test_fast_and_or_atoms_equal_the_grammars(pattern: str) -> None:
    try:
        slow = grammar_triggers(pattern)
    except ValueError:
        assert _fast_triggers(pattern) is None
        return
    fast = _fast_triggers(pattern)
    assert fast is not None, pattern
    assert fast.atoms == slow.atoms
    assert not fast.multi
    if " AND " in pattern:
        assert not fast.direct


@pytest.mark.parametrize("pattern", simple_patterns(300, 1))
def test_fast_path_atoms_equal_the_grammars(pattern: str) -> None:
    fast = _fast_triggers(pattern)
    assert fast is not None, pattern
    slow = grammar_triggers(pattern)
    assert fast.atoms == slow.atoms
    assert fast.multi == slow.multi is False
    assert fast.direct == all(a.op in ("=", "IN") or (a.op == "ISSUBSET" and a.path in (
        "ipv4-addr:value", "ipv6-addr:value")) or (a.op == "LIKE" and a.values[0].isascii()
        and a.values[0].startswith("%.") and not any(c in a.values[0][1:] for c in "%_"))
        for a in fast.atoms)


@pytest.mark.parametrize("pattern", [
    "[ipv4-addr:value = '1.2.3.4'] AND [ipv4-addr:value = '1.2.3.5']",
    "[ipv4-addr:value = '1.2.3.4' AND network-traffic:dst_port = 443]",
    "[ipv4-addr:value != '1.2.3.4']",
    "[url:value MATCHES '^x']",
    "[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS",
    "[IPV4-addr:value = '1.2.3.4']",
    "[ipv4-addr:value='1.2.3.4']",
])
def test_other_shapes_go_to_the_grammar(pattern: str) -> None:
    assert _fast_triggers(pattern) is None
    try:
        expected = grammar_triggers(pattern)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)[:20]):
            triggers(pattern)
    else:
        assert triggers(pattern) == expected


def _random_table(rng: random.Random, n: int, messy: bool) -> pa.Table:
    # As readers give them: addresses in address columns, domains lower-cased. The messy
    # table breaks both (a non-address there becomes a domain-name object, which the index
    # does not look for under that column): hits may then be missed, never invented.
    ips = ["198.51.100.7", "10.1.2.3", "2001:db8::1", None]
    names = ["evil.example", "a.evil.example", "it's", "back\\slash", None]
    if messy:
        ips += ["01.2.3.4", "1.2.3", "999.1.1.1", "evil.example", ""]
        names += ["Evil.Example"]
    return pa.table({
        TS: pa.array([1_700_000_000_000_000 + i for i in range(n)], pa.int64()),
        LINE: pa.array(range(1, n + 1), pa.int64()),
        "network-traffic:dst_ref.value": [rng.choice(ips) for _ in range(n)],
        "network-traffic:dst_port": [rng.choice([443, 80, None]) for _ in range(n)],
        "domain-name:value": [rng.choice(names) for _ in range(n)],
        "domain-name:resolves_to_refs[*].value": [rng.sample(ips[:6], rng.randint(0, 2))
                                                  for _ in range(n)],
        "url:value": [rng.choice(["http://x/", "a b", None]) for _ in range(n)],
        "file:hashes.'SHA-256'": [rng.choice(["0" * 64, None]) for _ in range(n)],
    })


def _ind(i: int, pattern: str) -> dict:
    return {"type": "indicator", "id": f"indicator--00000000-0000-4000-8000-{i:012d}",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z",
            "modified": "2020-01-01T00:00:00Z", "name": f"i{i}"}


@pytest.mark.parametrize(("seed", "messy"), [(s, m) for s in range(4) for m in (False, True)])
def test_hunt_hits_equal_the_evaluator_on_every_row(seed: int, messy: bool) -> None:
    """Differential: the index + direct path find exactly the (row, indicator) pairs that the
    exact evaluator finds when asked about every row and every pattern."""
    rng = random.Random(seed)
    patterns = simple_patterns(60, seed + 100) + and_patterns(20, seed + 200)
    obs = Observations(_random_table(rng, 40, messy), "t.log", "test")
    ix = IndicatorIndex()
    for i, p in enumerate(patterns):
        ix.add(_ind(i, p))
    sightings = Sightings("identity--00000000-0000-4000-8000-000000000001", TLP.AMBER,
                          window_us=1)  # one window per row: the hits can be read back
    Hunter(ix, sightings).feed(obs)
    found = {(w.start_us - 1_700_000_000_000_000, w.name) for w in sightings.windows.values()}
    rejected = set(ix.rejected)
    expected = set()
    for row in range(len(obs)):
        od = obs.observed_data(row)
        for i, p in enumerate(patterns):
            if _ind(i, p)["id"] in rejected:
                continue
            try:
                ok = matches(p, [od])
            except ValueError:
                ok = False
            if ok:
                expected.add((row, f"i{i}"))
    assert found <= expected
    if not messy:
        assert found == expected
    assert any(c.indicator.direct for c in ix.candidates(obs.table))


def test_ipv4_ints_agree_with_ipaddress() -> None:
    rng = random.Random(3)
    good = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(2000)]
    bad = ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.04", " 1.2.3.4",
           "1.2.3.4 ", "a.b.c.d", "2001:db8::1", "::ffff:1.2.3.4", "1..2.3", "1.2.3.-4",
           "١.٢.٣.٤", "1.2.3.4/32"]
    junk = ["".join(rng.choice("0123456789.") for _ in range(rng.randint(0, 17)))
            for _ in range(20000)]
    near = [".".join(str(rng.choice([0, 1, 9, 10, 99, 100, 199, 249, 255, 256, 999, "00"]))
                     for _ in range(4)) for _ in range(5000)]
    values = ["pad", *good, *bad, *junk, *near, None, "0.0.0.0", "255.255.255.255"]
    pos, ints = ipv4_ints(pa.array(values, pa.string()).slice(1))  # an offset array too
    values = values[1:]
    expected = {}
    for i, v in enumerate(values):
        with contextlib.suppress(ValueError, TypeError):
            expected[i] = int(ipaddress.IPv4Address(v))
    assert dict(zip(pos.tolist(), ints.tolist(), strict=True)) == expected


def test_addresses_ipv4_ipv6_and_malformed_in_one_column() -> None:
    ix = IndicatorIndex()
    for i, p in enumerate(["[ipv4-addr:value = '198.51.100.7']",
                           "[ipv4-addr:value ISSUBSET '10.0.0.0/8']",
                           "[ipv6-addr:value ISSUBSET '2001:db8::/32']",
                           "[ipv6-addr:value = '2001:db8::1']",
                           "[ipv4-addr:value = '01.2.3.4']"]):
        assert ix.add(_ind(i, p)) is None
    col = ["198.51.100.7", "10.255.0.1", "2001:db8::1", "2001:db9::1", "11.0.0.1",
           "10.1.1", "::::", "10.1.1.1.1", "", None, "01.2.3.4", "x" * 5000, "198.51.100.07"]
    table = pa.table({"network-traffic:dst_ref.value": pa.array(col, pa.string()),
                      "domain-name:resolves_to_refs[*].value": [[v] if v else [] for v in col]})
    got = {(c.row, c.column.split(":")[0], c.indicator.name) for c in ix.candidates(table)}
    for column in ("network-traffic", "domain-name"):
        assert {(r, n) for r, c, n in got if c == column} == {
            (0, "i0"), (1, "i1"), (2, "i2"), (2, "i3"), (10, "i4")}


def test_bulk_compile_files_what_the_atoms_say() -> None:
    """`add_many` reads `[path = 'literal']` for the whole batch at once: each indicator ends
    up with the atoms and index entries that `triggers` gives its pattern one by one."""
    from shieldwall.detect.index import _SHIFT, _norm

    patterns = simple_patterns(300, 7) + and_patterns(50, 8) + [
        "[file:hashes.'SHA-256' = 'AB\\\\c\\'d']", "[x-custom-obj:a_b.'c-d'.e = 'v']"]
    ix = IndicatorIndex()
    ix.add_many([_ind(i, p) for i, p in enumerate(patterns)])
    expected: set[tuple[str, str, int]] = set()
    for slot, comp in ix.indicators.items():
        trig = triggers(comp.pattern)
        assert comp.atoms == trig.atoms and comp.direct == trig.direct, comp.pattern
        for n, a in enumerate(trig.atoms):
            if a.op == "=" or a.op == "IN":
                expected |= {(a.path, _norm(a.path, v), slot << _SHIFT | n) for v in a.values}
    got = {(path, v, k) for path, table in ix._eq.items() for v, keys in table.items()
           for k in keys if ix.indicators[k >> _SHIFT].atoms[k & 0xFFFF].op in ("=", "IN")}
    assert got == expected
    assert len(ix) + len(ix.rejected) == len(patterns)


def test_repetitive_address_columns_parse_their_distinct_values_only() -> None:
    """A column with few distinct values takes the dictionary path: same positions and
    integers as parsing every row."""
    from shieldwall.detect.index import _Column

    rng = random.Random(9)
    pool = ["198.51.100.7", "10.1.2.3", "2001:db8::1", "01.2.3.4", "evil.example", "", None,
            "255.255.255.255", "1.2.3"]
    values = [rng.choice(pool) for _ in range(10_000)]
    col = _Column(pa.array(values, pa.string()))
    pos, ints = col.ipv4()
    assert len(col.encoded()[0]) * 2 <= len(values)  # the dictionary path was taken
    want_pos, want_ints = ipv4_ints(pa.array(values, pa.string()))
    assert pos.tolist() == want_pos.tolist() and ints.tolist() == want_ints.tolist()
