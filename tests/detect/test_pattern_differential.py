"""Shieldwall's matcher against the OASIS reference matcher (stix2-matcher 3.0.0).

Hypothesis draws patterns from a grammar of its own (every comparison operator, paths with
indexes, [*] and references, every literal kind, AND/OR inside and between observations,
FOLLOWEDBY, WITHIN, REPEATS, START/STOP) and observations to match them against; both
matchers must agree. The observation is given to Shieldwall in both STIX 2.0 form (inline
`objects`) and STIX 2.1 form (`object_refs` + SCOs in a bundle), to the reference in 2.1 form.

The generator stays inside the region where Shieldwall means to agree with the reference.
Every deliberate difference (docs/patterns.md) is instead pinned down in KNOWN_DIFFERENCES
below, which asserts what the reference does *and* what Shieldwall does, so a change on
either side fails loudly instead of being skipped.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stix2matcher.matcher import MatcherException
from stix2matcher.matcher import match as reference_match

from shieldwall.detect import compile_pattern, matches
from shieldwall.stix.values import domain as canonical_domain

# -- observations ----------------------------------------------------------------------------

IPS = ["10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.5", "198.51.100.7"]
NETS = ["10.0.0.0/8", "10.0.0.0/31", "192.168.1.0/24", "198.51.100.7/32"]
NAMES = ["evil.example", "a.evil.example", "good.test", "Final Report.exe", "abc", "ABC",
         "a_c", "a%c", "é", "e\u0301", "10.0.0.1", ""]
# `domain-name:value` compares canonical forms (case, IDNA: KNOWN_DIFFERENCES), so there the
# generator keeps to names that are their own canonical form.
CANONICAL_NAMES = [n for n in NAMES if canonical_domain(n) == n]
STAMPS = ["2020-01-01T00:00:00Z", "2020-01-01T00:00:05Z", "2020-01-01T00:00:05.500Z",
          "2020-06-01T12:00:00Z"]
HEXES = ["616263", "0b0c", "", "4d5a"]  # valid UTF-8 without newlines (see LIKE below)
NUMBERS = [-2, 0, 1, 5, 1.5, 5.0]

scalar = st.one_of(
    st.sampled_from(NAMES), st.sampled_from(NUMBERS), st.booleans(), st.none()
)


@st.composite
def sco(draw, n_objects):
    """One object of a small vocabulary; refs are indexes of objects in the same observation."""
    kind = draw(st.sampled_from(["ipv4-addr", "domain-name", "file", "network-traffic"]))
    obj = {"type": kind}
    if kind == "ipv4-addr":
        obj["value"] = draw(st.sampled_from(IPS))
        if draw(st.booleans()):
            obj["net"] = draw(st.sampled_from(NETS))
    else:
        if draw(st.booleans()):
            obj["value"] = draw(st.sampled_from(
                CANONICAL_NAMES if kind == "domain-name" else NAMES))
    for prop, strategy in [
        ("n", st.sampled_from(NUMBERS)),
        ("b", st.booleans()),
        ("s", scalar),
        ("l", st.lists(scalar, max_size=3)),
        ("d", st.fixed_dictionaries({"k": scalar})),
        ("t", st.sampled_from(STAMPS)),
        ("x_hex", st.sampled_from(HEXES)),
        ("r_ref", st.integers(0, n_objects)),  # n_objects itself dangles
        ("rs_refs", st.lists(st.integers(0, n_objects), max_size=3, unique=True)),
    ]:
        if draw(st.booleans()):
            obj[prop] = draw(strategy)
    return obj


@st.composite
def observation(draw):
    n_objects = draw(st.integers(1, 3))
    objects = [draw(sco(n_objects)) for _ in range(n_objects)]
    start = draw(st.integers(0, 12)) * 5
    length = draw(st.sampled_from([0, 0, 3, 10]))
    return {
        "objects": objects,
        "first": start,
        "last": start + length,
        "n": draw(st.sampled_from([1, 1, 1, 2, 3])),
    }


def _stamp(seconds):
    return f"2020-01-01T00:{seconds // 60:02d}:{seconds % 60:02d}Z"


def render(observations):
    """The same observations as STIX 2.0 observed-data and as STIX 2.1 bundles."""
    v20, v21 = [], []
    for i, o in enumerate(observations):
        common = {
            "first_observed": _stamp(o["first"]),
            "last_observed": _stamp(o["last"]),
            "number_observed": o["n"],
        }
        ids = [f"{obj['type']}--{i:04d}{k:04d}-0000-4000-8000-000000000000"
               for k, obj in enumerate(o["objects"])]

        def ref20(k):
            return str(k)

        def ref21(k, ids=ids):
            return ids[k] if k < len(ids) else f"file--dangling-{k}"

        objs20, objs21 = {}, []
        for k, obj in enumerate(o["objects"]):
            a, b = dict(obj), dict(obj)
            if "r_ref" in obj:
                a["r_ref"], b["r_ref"] = ref20(obj["r_ref"]), ref21(obj["r_ref"])
            if "rs_refs" in obj:
                a["rs_refs"] = [ref20(r) for r in obj["rs_refs"]]
                b["rs_refs"] = [ref21(r) for r in obj["rs_refs"]]
            b["id"] = ids[k]
            objs20[str(k)] = a
            objs21.append(b)
        od_id = f"observed-data--{i:08d}-0000-4000-8000-000000000000"
        v20.append({"type": "observed-data", "id": od_id, **common, "objects": objs20})
        v21.append({
            "type": "bundle",
            "id": f"bundle--{i:08d}-0000-4000-8000-000000000000",
            "objects": [{"type": "observed-data", "id": od_id, **common, "object_refs": ids},
                        *objs21],
        })
    return v20, v21


# -- patterns --------------------------------------------------------------------------------

TYPES = ["ipv4-addr", "domain-name", "file", "network-traffic"]
PATHS = ["value", "n", "b", "s", "l[0]", "l[1]", "l[*]", "d.k", "d", "x_hex", "r_ref.value",
         "r_ref.n", "r_ref", "rs_refs[*].value", "rs_refs[0].s", "missing", "'value'"]


def q(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


STRING_LITS = [q(s) for s in NAMES] + ["'ab\\'c'", "'abc'"]
CANONICAL_STRING_LITS = [q(s) for s in CANONICAL_NAMES] + ["'ab\\'c'"]
NUMBER_LITS = ["-2", "0", "1", "5", "1.5", "5.0", "-0.5"]
IN_NUMBER_LITS = [n for n in NUMBER_LITS if n not in ("0", "1")]
BINARY_LITS = ["h'616263'", "h'0b0c'", "b'YWJj'", "b'TVo='", "h''"]
ORDERABLE = STRING_LITS + NUMBER_LITS + BINARY_LITS
PRIMITIVE = [*ORDERABLE, "true", "false"]
TIMESTAMP_LITS = [f"t'{s}'" for s in STAMPS]
LIKES = ["'%.example'", "'evil%'", "'%'", "'a_c'", "'%e%'", "'10.0.0._'", "''", "'abc'",
         "'a%c'", "'%c'"]
REGEXES = ["'^10\\\\.'", "'evil'", "'[a-c]+'", "'^$'", "'é'", "'(?i)abc'", "'\\\\d+'",
           "'^a.c$'", "'x|b'", "'\\\\.exe$'"]


@st.composite
def atom(draw):
    kind = draw(st.sampled_from(["eq", "order", "in", "like", "matches", "subset",
                                 "superset", "ts"]))
    neg = "NOT " if draw(st.integers(0, 3)) == 0 else ""
    obj_type = draw(st.sampled_from(TYPES))
    path = draw(st.sampled_from(PATHS))
    canonical = obj_type == "domain-name" and path in ("value", "'value'")
    strings = CANONICAL_STRING_LITS if canonical else STRING_LITS
    if kind == "eq":
        op = draw(st.sampled_from(["=", "!="]))
        lits = [x for x in PRIMITIVE if x not in STRING_LITS or x in strings]
        return f"{obj_type}:{path} {neg}{op} {draw(st.sampled_from(lits))}"
    if kind == "order":
        op = draw(st.sampled_from(["<", ">", "<=", ">="]))
        return f"{obj_type}:{path} {neg}{op} {draw(st.sampled_from(ORDERABLE))}"
    if kind == "in":
        # 0 and 1 stay out of IN sets: the reference finds a boolean IN (0) / IN (1)
        # (Python's False == 0), a listed difference (KNOWN_DIFFERENCES), not noise.
        pool = draw(st.sampled_from([strings, IN_NUMBER_LITS, BINARY_LITS]))
        members = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        if pool is BINARY_LITS:
            # Binary sets only against binary properties: a binary literal equal to a
            # string's Latin-1 bytes is a listed difference (KNOWN_DIFFERENCES), not noise.
            path = "x_hex"
        elif path == "x_hex" and pool is STRING_LITS:
            path = "s"  # a binary value IN strings: the same listed difference
        return f"{obj_type}:{path} {neg}IN ({', '.join(members)})"
    if kind == "like":
        return f"{obj_type}:{path} {neg}LIKE {draw(st.sampled_from(LIKES))}"
    if kind == "matches":
        return f"{obj_type}:{path} {neg}MATCHES {draw(st.sampled_from(REGEXES))}"
    if kind == "subset":  # the reference raises on values that are not IPv4 (see below)
        return f"ipv4-addr:value {neg}ISSUBSET {q(draw(st.sampled_from(NETS)))}"
    if kind == "superset":
        lit = draw(st.sampled_from(IPS + NETS))
        return f"ipv4-addr:net {neg}ISSUPERSET {q(lit)}"
    # timestamps only against `t`, which always holds timestamps (see KNOWN_DIFFERENCES)
    op = draw(st.sampled_from(["=", "!=", "<", ">=", "IN"]))
    if op == "IN":
        members = draw(st.lists(st.sampled_from(TIMESTAMP_LITS), min_size=1, max_size=2))
        return f"{obj_type}:t {neg}IN ({', '.join(members)})"
    return f"{obj_type}:t {neg}{op} {draw(st.sampled_from(TIMESTAMP_LITS))}"


def comparison(depth=2):
    leaf = atom()
    if depth == 0:
        return leaf
    sub = comparison(depth - 1)
    return st.one_of(
        leaf,
        leaf,
        st.tuples(sub, st.sampled_from(["AND", "OR"]), sub).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(sub, st.sampled_from(["AND", "OR"]), sub).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
    )


exists = st.tuples(st.sampled_from(TYPES), st.sampled_from(PATHS)).map(
    lambda t: f"EXISTS {t[0]}:{t[1]}")  # alone: the reference cannot combine EXISTS


# leaves that hold for many generated objects, so that the observation operators and
# qualifiers are exercised on matches and not only on misses
likely = st.tuples(st.sampled_from(TYPES), st.sampled_from([
    "value LIKE '%'", "n > -5", "value NOT = 'evil.example'", "b = true",
    "t > t'2020-01-01T00:00:01Z'",
])).map(lambda t: f"{t[0]}:{t[1]}")


def observation_expression(depth=2, leaves=None):
    if leaves is None:
        leaves = st.one_of(comparison(), comparison(), exists, likely)
    leaf = leaves.map(
        lambda c: f"[{c}]")
    if depth == 0:
        return leaf
    sub = observation_expression(depth - 1, leaves)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["AND", "OR", "FOLLOWEDBY"]), sub).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        st.tuples(sub, st.sampled_from(["AND", "OR", "FOLLOWEDBY"]), sub).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(sub, st.sampled_from([1, 4.5, 5, 10, 30])).map(
            lambda t: f"({t[0]}) WITHIN {t[1]} SECONDS"),
        st.tuples(sub, st.integers(1, 3)).map(lambda t: f"({t[0]}) REPEATS {t[1]} TIMES"),
        st.tuples(sub, st.integers(0, 40), st.sampled_from([1, 10, 30])).map(
            lambda t: f"({t[0]}) START t'{_stamp(t[1])}' STOP t'{_stamp(t[1] + t[2])}'"),
    )


def reference(pattern, bundles):
    return bool(reference_match(pattern, bundles, stix_version="2.1"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=observation_expression(), observed=st.lists(observation(), min_size=1,
                                                           max_size=3))
def test_agrees_with_reference_matcher(pattern, observed):
    v20, v21 = render(observed)
    expected = reference(pattern, v21)
    compiled = compile_pattern(pattern)
    assert compiled.matches(v21) is expected, (pattern, v21)
    assert compiled.matches(v20) is expected, (pattern, v20)
    # the explanation reaches the same verdict as the plain match
    assert compiled.explain(v21).success is expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=observation_expression(depth=3, leaves=likely),
       observed=st.lists(observation(), min_size=1, max_size=4))
def test_observation_operators_agree_with_reference(pattern, observed):
    """Nested AND / OR / FOLLOWEDBY / qualifiers over leaves that often hold."""
    v20, v21 = render(observed)
    expected = reference(pattern, v21)
    assert matches(pattern, v21) is expected, (pattern, v21)
    assert matches(pattern, v20) is expected, (pattern, v20)


@settings(max_examples=100, deadline=None)
@given(pattern=comparison(depth=3).map(lambda c: f"[{c}]"),
       observed=st.lists(observation(), min_size=1, max_size=2))
def test_comparison_expressions_agree_with_reference(pattern, observed):
    """Deeper comparison expressions, where most of the operator semantics live."""
    v20, v21 = render(observed)
    assert matches(pattern, v21) is reference(pattern, v21), (pattern, v21)
    assert matches(pattern, v20) is reference(pattern, v21), (pattern, v20)


# -- deliberate differences (docs/patterns.md) -----------------------------------------------


def _bundle(*objects, first="2020-01-01T00:00:00Z", last=None, n=1):
    ids = []
    scos = []
    for k, obj in enumerate(objects):
        obj = dict(obj)
        obj.setdefault("id", f"{obj['type']}--0000{k:04d}-0000-4000-8000-000000000000")
        ids.append(obj["id"])
        scos.append(obj)
    od = {"type": "observed-data", "id": "observed-data--00000000-0000-4000-8000-000000000001",
          "first_observed": first, "last_observed": last or first, "number_observed": n,
          "object_refs": ids}
    return [{"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001",
             "objects": [od, *scos]}]


_V6_ID = "ipv6-addr--00000001-0000-4000-8000-000000000000"
FILE_AB = _bundle({"type": "file", "name": "a", "size": 5}, {"type": "file", "size": 3})
RAISES = "raises"

KNOWN_DIFFERENCES = [
    # (name, pattern, observations, reference outcome, Shieldwall outcome)
    ("NOT EXISTS is the absence of the property (the reference ignores NOT)",
     "[NOT EXISTS file:nope]", FILE_AB, False, True),
    ("EXISTS combines with AND inside an observation (the reference fails with TypeError)",
     "[EXISTS file:name AND file:size = 5]", FILE_AB, RAISES, True),
    ("EXISTS combines with OR inside an observation (the reference fails)",
     "[file:size = 3 OR EXISTS file:name]", FILE_AB, RAISES, True),
    ("LIKE % spans newlines (a newline is a character)",
     "[file:name LIKE 'a%b']", _bundle({"type": "file", "name": "a\nb"}), False, True),
    ("LIKE matches the whole value, not the value minus a trailing newline",
     "[file:name LIKE 'ab']", _bundle({"type": "file", "name": "ab\n"}), True, False),
    ("MATCHES $ is the end of the value in RE2, Python also accepts it before a final newline",
     "[file:name MATCHES 'b$']", _bundle({"type": "file", "name": "ab\n"}), True, False),
    ("MATCHES \\d is ASCII in RE2, Unicode in Python",
     "[file:name MATCHES '^\\\\d$']", _bundle({"type": "file", "name": "\u0663"}), True, False),
    ("IN compares like =: a boolean is not the number 1 (Python's True == 1 leaks into the "
     "reference)",
     "[file:flag IN (1, 2)]", _bundle({"type": "file", "flag": True}), True, False),
    ("IN compares like =: a binary value equals its Latin-1 string",
     "[file:x_hex IN ('abc', 'def')]", _bundle({"type": "file", "x_hex": "616263"}), False, True),
    ("a timestamp literal against a string that is not a timestamp is a plain mismatch",
     "[file:name = t'2020-01-01T00:00:00Z']", FILE_AB, RAISES, False),
    ("... and its negation therefore holds",
     "[file:name != t'2020-01-01T00:00:00Z']", FILE_AB, RAISES, True),
    ("ISSUBSET on a value that is not an address is a mismatch, not an error",
     "[file:name ISSUBSET '10.0.0.0/8']", FILE_AB, RAISES, False),
    ("ISSUBSET supports IPv6",
     "[ipv6-addr:value ISSUBSET '2001:db8::/32']",
     _bundle({"type": "ipv6-addr", "value": "2001:db8::1"}), RAISES, True),
    ("ISSUPERSET accepts a plain address value as a /32",
     "[ipv4-addr:value ISSUPERSET '10.0.0.1']",
     _bundle({"type": "ipv4-addr", "value": "10.0.0.1"}), RAISES, True),
    ("a /0 prefix is a valid CIDR block",
     "[ipv4-addr:value ISSUBSET '0.0.0.0/0']",
     _bundle({"type": "ipv4-addr", "value": "10.0.0.1"}), RAISES, True),
    ("only dotted-quad IPv4 is an address (inet_aton reads '10.1' as 10.0.0.1)",
     "[ipv4-addr:value ISSUBSET '10.0.0.0/8']",
     _bundle({"type": "ipv4-addr", "value": "10.1"}), True, False),
    ("a *_ref that is not a string resolves to nothing instead of failing the match",
     "[file:parent_ref.name = 'x']", _bundle({"type": "file", "parent_ref": 7}), RAISES, False),
    ("a *_hex value that does not decode is absent instead of failing the match",
     "[file:x_hex = h'00']", _bundle({"type": "file", "x_hex": "zz"}), RAISES, False),
    ("LIKE on binary data that is not UTF-8 is a mismatch instead of failing the match",
     "[file:x_hex LIKE '%']", _bundle({"type": "file", "x_hex": "ff00"}), RAISES, False),
    # canonical values (shieldwall.stix.values): one value however it is written
    ("a hexadecimal digest is one value in either case",
     "[file:hashes.'SHA-256' = 'AABBCC']",
     _bundle({"type": "file", "hashes": {"SHA-256": "aabbcc"}}), False, True),
    ("a domain name is one value in either case",
     "[domain-name:value = 'EVIL.example']",
     _bundle({"type": "domain-name", "value": "evil.example"}), False, True),
    ("... with or without the root's trailing dot",
     "[domain-name:value = 'evil.example']",
     _bundle({"type": "domain-name", "value": "evil.example."}), False, True),
    ("... in Unicode or punycode (IDNA 2008, UTS #46)",
     "[domain-name:value = 'bücher.example']",
     _bundle({"type": "domain-name", "value": "xn--bcher-kva.example"}), False, True),
    ("LIKE on a domain name compares canonical forms too",
     "[domain-name:value LIKE '%.EXAMPLE']",
     _bundle({"type": "domain-name", "value": "a.evil.example"}), False, True),
    ("an IPv6 address is one value however RFC 4291 lets it be written",
     "[ipv6-addr:value = '2001:db8::1']",
     _bundle({"type": "ipv6-addr", "value": "2001:0DB8:0:0:0:0:0:1"}), False, True),
    ("an IPv4-mapped IPv6 address is the IPv4 address",
     "[network-traffic:dst_ref.value = '192.0.2.1']",
     _bundle({"type": "network-traffic", "dst_ref": _V6_ID},
             {"type": "ipv6-addr", "id": _V6_ID, "value": "::ffff:192.0.2.1"}), False, True),
    ("... also for ISSUBSET",
     "[network-traffic:dst_ref.value ISSUBSET '192.0.2.0/24']",
     _bundle({"type": "network-traffic", "dst_ref": _V6_ID},
             {"type": "ipv6-addr", "id": _V6_ID, "value": "::ffff:192.0.2.1"}), RAISES, True),
    ("a URL's scheme and host are case-insensitive",
     "[url:value = 'HTTP://EVIL.example/Gate']",
     _bundle({"type": "url", "value": "http://evil.example/Gate"}), False, True),
    ("an email address's domain is case-insensitive",
     "[email-addr:value = 'Ops@EVIL.example']",
     _bundle({"type": "email-addr", "value": "Ops@evil.example"}), False, True),
]
# kept as the reference has them: a URL path and an email local part keep their case, and
# MATCHES and the ordering operators compare the value as written
AGREED_AS_WRITTEN = [
    ("[url:value = 'http://evil.example/gate']",
     _bundle({"type": "url", "value": "http://evil.example/Gate"}), False),
    ("[email-addr:value = 'ops@evil.example']",
     _bundle({"type": "email-addr", "value": "Ops@evil.example"}), False),
    ("[domain-name:value MATCHES '^EVIL']",
     _bundle({"type": "domain-name", "value": "EVIL.example"}), True),
    ("[domain-name:value > 'EVIL']", _bundle({"type": "domain-name", "value": "a.example"}),
     True),
]


@pytest.mark.parametrize(("pattern", "observed", "outcome"), AGREED_AS_WRITTEN)
def test_values_compared_as_written_where_no_canonical_rule_applies(pattern, observed,
                                                                     outcome):
    assert reference(pattern, observed) is outcome
    assert matches(pattern, observed) is outcome


@pytest.mark.parametrize(
    ("pattern", "observed", "theirs", "ours"),
    [pytest.param(p, o, t, s, id=name) for name, p, o, t, s in KNOWN_DIFFERENCES],
)
def test_known_differences(pattern, observed, theirs, ours):
    if theirs is RAISES:
        with pytest.raises((MatcherException, TypeError, ValueError, UnicodeDecodeError)):
            reference(pattern, observed)
    else:
        assert reference(pattern, observed) is theirs
    assert matches(pattern, observed) is ours


@pytest.mark.parametrize(
    "pattern",
    [
        "[file:size IN (1, 'a')]",
        "[file:size = 5] WITHIN 0 SECONDS",
        "[file:size = 5] REPEATS 0 TIMES",
        "[file:name ISSUBSET 'not-a-net']",
        "[file:name MATCHES '(']",
    ],
)
def test_invalid_patterns_fail_at_compile_time_not_at_match_time(pattern):
    """Both refuse these; the reference only when it matches, Shieldwall when it compiles."""
    with pytest.raises((MatcherException, ValueError, Exception)):
        reference(pattern, FILE_AB)
    with pytest.raises(ValueError):
        compile_pattern(pattern)


def test_backreferences_are_refused_where_python_would_accept_them():
    observed = _bundle({"type": "file", "name": "aa"})
    assert reference("[file:name MATCHES '(a)\\\\1']", observed) is True
    with pytest.raises(ValueError, match="RE2"):
        compile_pattern("[file:name MATCHES '(a)\\\\1']")


def test_inverted_time_interval_is_refused():
    observed = _bundle({"type": "file", "name": "a"}, first="2020-01-02T00:00:00Z",
                       last="2020-01-01T00:00:00Z")
    assert reference("[file:name = 'a']", observed) is True  # only fails under a qualifier
    with pytest.raises(ValueError, match="after"):
        matches("[file:name = 'a']", observed)
