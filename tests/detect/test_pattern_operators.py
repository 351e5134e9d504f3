"""Each comparison operator, path form, literal kind and qualifier, on hand-made observations.

Many patterns are the examples of STIX 2.1 Part 5 (section 9) or close variants of them.
"""

from __future__ import annotations

import pytest

from shieldwall.detect import PatternError, compile_pattern, matches


def observed(*objects, n=1, first="2016-06-15T12:00:00Z", last=None, ident=None):
    """One STIX 2.0-style observed-data holding `objects` under keys "0", "1", …"""
    return {
        "type": "observed-data",
        "id": ident or "observed-data--00000000-0000-4000-8000-000000000000",
        "first_observed": first,
        "last_observed": last or first,
        "number_observed": n,
        "objects": {str(i): o for i, o in enumerate(objects)},
    }


FILE = {
    "type": "file",
    "name": "Final Report.exe",
    "size": 371712,
    "ratio": 0.25,
    "signed": False,
    "created": "2014-01-13T07:03:17Z",
    "hashes": {"SHA-256": "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f",
               "MD5": "79054025255fb1a26e4bc422aef54eb4"},
    "magic_number_hex": "4d5a",
    "tags": ["a", "b", "c"],
    "parent_directory_ref": "1",
}
DIRECTORY = {"type": "directory", "path": "C:\\Users\\Public"}
FILE_OBS = [observed(FILE, DIRECTORY)]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # = and != on strings, numbers, booleans, hashes (quoted key with a hyphen)
        ("[file:name = 'Final Report.exe']", True),
        ("[file:name = 'final report.exe']", False),
        ("[file:name != 'other.exe']", True),
        ("[file:size = 371712]", True),
        ("[file:size = 371712.0]", True),
        ("[file:size = '371712']", False),  # a string never equals a number
        ("[file:signed = false]", True),
        ("[file:signed = 0]", False),  # a boolean never equals a number
        (
            "[file:hashes.'SHA-256' = "
            "'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
            True,
        ),
        ("[file:hashes.MD5 = '79054025255fb1a26e4bc422aef54eb4']", True),
        ("[file:nope = 'x']", False),
        ("[file:nope != 'x']", False),  # an absent property satisfies nothing, not even !=
        # ordering
        ("[file:size > 1000]", True),
        ("[file:size < 1000]", False),
        ("[file:size >= 371712]", True),
        ("[file:size <= 371711]", False),
        ("[file:ratio < 0.5]", True),
        ("[file:name > 'A']", True),
        ("[file:name < 'A']", False),
        ("[file:signed > 0]", False),  # booleans do not order
        # NOT negates the comparison
        ("[file:size NOT > 1000]", False),
        ("[file:name NOT = 'other']", True),
        ("[file:name NOT LIKE '%.exe']", False),
        # IN
        ("[file:name IN ('a.exe', 'Final Report.exe')]", True),
        ("[file:size IN (1, 2, 371712)]", True),
        ("[file:size IN (1.5, 371712)]", True),
        ("[file:size NOT IN (1, 2)]", True),
        ("[file:name IN ()]", False),
        # LIKE
        ("[file:name LIKE 'Final Report%']", True),
        ("[file:name LIKE '%.exe']", True),
        ("[file:name LIKE '%Report%']", True),
        ("[file:name LIKE 'Final_Report.exe']", True),
        ("[file:name LIKE 'Final__Report.exe']", False),
        ("[file:name LIKE 'final%']", False),
        ("[file:size LIKE '3%']", False),  # LIKE only applies to strings
        # MATCHES (RE2, unanchored search)
        ("[file:name MATCHES '^Final Report.*\\\\.exe$']", True),
        ("[file:name MATCHES 'Report']", True),
        ("[file:name MATCHES '(?i)^final']", True),
        ("[file:name MATCHES '^Report']", False),
        # list indexes and [*]
        ("[file:tags[0] = 'a']", True),
        ("[file:tags[2] = 'c']", True),
        ("[file:tags[3] = 'c']", False),
        ("[file:tags[*] = 'b']", True),
        ("[file:tags[*] = 'z']", False),
        # references
        ("[file:parent_directory_ref.path = 'C:\\\\Users\\\\Public']", True),
        ("[file:parent_directory_ref.path LIKE 'C:%']", True),
        # binary and hex literals against a *_hex property and a string
        ("[file:magic_number_hex = h'4d5a']", True),
        ("[file:magic_number_hex = b'TVo=']", True),
        ("[file:magic_number_hex = 'MZ']", True),
        ("[file:name = h'4d5a']", False),
        # timestamps compare with timestamp strings
        ("[file:created = t'2014-01-13T07:03:17Z']", True),
        ("[file:created = t'2014-01-13T07:03:17.000Z']", True),
        ("[file:created > t'2014-01-01T00:00:00Z']", True),
        ("[file:created < t'2014-01-01T00:00:00Z']", False),
        # boolean operators within one observation: both sides on the same object
        ("[file:name = 'Final Report.exe' AND file:size = 371712]", True),
        ("[file:name = 'Final Report.exe' AND file:size = 1]", False),
        ("[file:name = 'x' OR file:size = 371712]", True),
        ("[(file:name = 'pdf.exe' OR file:size = 371712) AND "
         "file:created = t'2014-01-13T07:03:17Z']", True),
        ("[file:name = 'Final Report.exe' AND directory:path = 'C:\\\\Users\\\\Public']", False),
        ("[file:name = 'x' OR directory:path LIKE 'C:%']", True),
        # EXISTS
        ("[EXISTS file:hashes.MD5]", True),
        ("[EXISTS file:hashes.'SHA-1']", False),
        ("[NOT EXISTS file:hashes.'SHA-1']", True),
        ("[NOT EXISTS file:name]", False),
        ("[EXISTS file:name AND file:size > 5]", True),
    ],
)
def test_comparison_operators(pattern, expected):
    assert matches(pattern, FILE_OBS) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", True),
        ("[ipv4-addr:value ISSUBSET '198.51.101.0/24']", False),
        ("[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']", True),
        ("[ipv4-addr:value ISSUBSET '0.0.0.0/0']", True),
        ("[ipv6-addr:value ISSUBSET '2001:0db8:dead:beef:0000:0000:0000:0000/64']", True),
        ("[ipv6-addr:value ISSUBSET '2001:0db8:dead:bee0::/64']", False),
        ("[ipv4-addr:value ISSUBSET '::/0']", False),  # families never contain each other
        ("[network-traffic:dst_ref.value ISSUBSET '198.51.100.0/24']", True),
        ("[network-traffic:dst_ref.type = 'ipv4-addr' AND "
         "network-traffic:dst_ref.value = '198.51.100.7']", True),
        ("[network-traffic:net ISSUPERSET '198.51.100.7']", True),
        ("[network-traffic:net ISSUPERSET '198.51.0.0/16']", False),
        ("[network-traffic:src_ref.value ISSUBSET '198.51.100.0/24']", False),  # dangling ref
        ("[domain-name:value ISSUBSET '198.51.100.0/24']", False),  # not an address
    ],
)
def test_cidr_operators(pattern, expected):
    data = [
        observed(
            {"type": "ipv4-addr", "value": "198.51.100.7"},
            {"type": "ipv6-addr", "value": "2001:db8:dead:beef::1"},
            {"type": "network-traffic", "dst_ref": "0", "src_ref": "9", "net": "198.51.100.0/24",
             "protocols": ["tcp"]},
            {"type": "domain-name", "value": "example.com"},
        )
    ]
    assert matches(pattern, data) is expected


def test_refs_lists_follow_each_reference():
    data = [
        observed(
            {"type": "domain-name", "value": "www.5z8.info", "resolves_to_refs": ["1", "2", "9"]},
            {"type": "ipv4-addr", "value": "198.51.100.1"},
            {"type": "ipv4-addr", "value": "198.51.100.2"},
        )
    ]
    assert matches(
        "[domain-name:value = 'www.5z8.info' AND "
        "domain-name:resolves_to_refs[*].value = '198.51.100.2']",
        data,
    )
    assert matches("[domain-name:resolves_to_refs[1].value = '198.51.100.2']", data)
    assert not matches("[domain-name:resolves_to_refs[2].value = '198.51.100.2']", data)
    assert not matches("[domain-name:resolves_to_refs[*].value = '198.51.100.9']", data)


def test_email_example_with_nested_references():
    message = {
        "type": "email-message",
        "from_ref": "1",
        "body_multipart": [
            {"body": "see attached"},
            {"body_raw_ref": "2"},
        ],
    }
    data = [
        observed(
            message,
            {"type": "email-addr", "value": "boss@example.com"},
            {"type": "file", "name": "Final Report 2016.exe"},
        )
    ]
    assert matches(
        "[email-message:from_ref.value MATCHES '.+\\\\@example\\\\.com$' AND "
        "email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final Report.+\\\\.exe$']",
        data,
    )


def test_binary_payload_matches_bytewise():
    data = [observed({"type": "artifact", "mime_type": "application/vnd.tcpdump.pcap",
                      "payload_bin": "1MOyoQIABAA="})]
    assert matches(
        "[artifact:mime_type = 'application/vnd.tcpdump.pcap' AND "
        "artifact:payload_bin MATCHES '\\\\xd4\\\\xc3\\\\xb2\\\\xa1\\\\x02\\\\x00\\\\x04\\\\x00']",
        data,
    )
    assert matches("[artifact:payload_bin = h'd4c3b2a102000400']", data)
    assert not matches("[artifact:payload_bin = h'd4c3b2a1']", data)


def test_stix21_object_refs_and_bundles_are_accepted():
    sco = {"type": "domain-name", "id": "domain-name--1", "value": "evil.example"}
    od = {
        "type": "observed-data",
        "id": "observed-data--1",
        "first_observed": "2020-01-01T00:00:00Z",
        "last_observed": "2020-01-01T00:00:00Z",
        "number_observed": 1,
        "object_refs": ["domain-name--1"],
    }
    pattern = "[domain-name:value = 'evil.example']"
    assert matches(pattern, [od, sco])
    assert matches(pattern, [{"type": "bundle", "id": "bundle--1", "objects": [od, sco]}])
    assert not matches(pattern, [od])  # the referenced SCO was not supplied
    assert not matches("[observed-data:number_observed = 1]", [od, sco])


def observations_at(*spec):
    """Observed-data with one object each: (value, first, last, n)."""
    out = []
    for i, (value, first, last, n) in enumerate(spec):
        out.append(
            observed({"type": "domain-name", "value": value}, n=n,
                     first=f"2020-01-01T00:{first}Z", last=f"2020-01-01T00:{last}Z",
                     ident=f"observed-data--{i}")
        )
    return out


A = "[domain-name:value = 'a.example']"
B = "[domain-name:value = 'b.example']"


@pytest.mark.parametrize(
    ("pattern", "data", "expected"),
    [
        # AND / OR across observations
        (f"{A} AND {B}", [("a.example", "00:00", "00:00", 1), ("b.example", "00:05", "00:05", 1)],
         True),
        (f"{A} AND {B}", [("a.example", "00:00", "00:00", 1)], False),
        (f"{A} OR {B}", [("b.example", "00:00", "00:00", 1)], True),
        # one sighting cannot be bound twice; number_observed provides more sightings
        (f"{A} AND {A}", [("a.example", "00:00", "00:00", 1)], False),
        (f"{A} AND {A}", [("a.example", "00:00", "00:00", 2)], True),
        # FOLLOWEDBY needs the left side no later than the right side
        (f"{A} FOLLOWEDBY {B}", [("a.example", "00:00", "00:00", 1),
                                 ("b.example", "00:05", "00:05", 1)], True),
        (f"{A} FOLLOWEDBY {B}", [("a.example", "00:10", "00:10", 1),
                                 ("b.example", "00:05", "00:05", 1)], False),
        (f"{A} FOLLOWEDBY {B}", [("a.example", "00:10", "00:20", 1),
                                 ("b.example", "00:05", "00:12", 1)], True),  # intervals overlap
        # WITHIN: one window of the given length touches every bound interval
        (f"({A} AND {B}) WITHIN 5 SECONDS", [("a.example", "00:00", "00:00", 1),
                                              ("b.example", "00:05", "00:05", 1)], True),
        (f"({A} AND {B}) WITHIN 4 SECONDS", [("a.example", "00:00", "00:00", 1),
                                              ("b.example", "00:05", "00:05", 1)], False),
        (f"({A} AND {B}) WITHIN 4.5 SECONDS", [("a.example", "00:00", "00:01", 1),
                                                ("b.example", "00:05", "00:05", 1)], True),
        (f"({A} FOLLOWEDBY {B}) WITHIN 300 SECONDS", [("a.example", "00:00", "00:00", 1),
                                                       ("b.example", "04:00", "04:00", 1)], True),
        # REPEATS
        (f"{A} REPEATS 3 TIMES", [("a.example", "00:00", "00:00", 2),
                                  ("a.example", "00:09", "00:09", 1)], True),
        (f"{A} REPEATS 3 TIMES", [("a.example", "00:00", "00:00", 2)], False),
        (f"{A} REPEATS 2 TIMES WITHIN 5 SECONDS", [("a.example", "00:00", "00:00", 1),
                                                   ("a.example", "00:09", "00:09", 1)], False),
        (f"{A} REPEATS 2 TIMES WITHIN 10 SECONDS", [("a.example", "00:00", "00:00", 1),
                                                    ("a.example", "00:09", "00:09", 1)], True),
        (f"({A} OR {B}) REPEATS 2 TIMES", [("a.example", "00:00", "00:00", 1),
                                           ("b.example", "00:09", "00:09", 1)], True),
        # START / STOP: start inclusive, stop exclusive
        (f"{A} START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z'",
         [("a.example", "00:30", "00:30", 1)], True),
        (f"{A} START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z'",
         [("a.example", "01:00", "01:00", 1)], False),
        (f"{A} START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z'",
         [("a.example", "00:00", "00:00", 1)], True),
        (f"{A} START t'2020-01-01T00:01:00Z' STOP t'2020-01-01T00:00:00Z'",
         [("a.example", "00:30", "00:30", 1)], False),  # empty interval
        (f"{A} START t'2020-01-01T00:00:10Z' STOP t'2020-01-01T00:01:00Z'",
         [("a.example", "00:00", "00:20", 1)], True),  # the interval overlaps
    ],
)
def test_observation_operators_and_qualifiers(pattern, data, expected):
    assert matches(pattern, observations_at(*data)) is expected


def test_spec_example_repeats_within():
    pattern = (
        "[network-traffic:dst_ref.type = 'domain-name' AND "
        "network-traffic:dst_ref.value = 'example.com'] REPEATS 5 TIMES WITHIN 180 SECONDS"
    )
    flow = {"type": "network-traffic", "dst_ref": "1", "protocols": ["tcp"]}
    name = {"type": "domain-name", "value": "example.com"}
    five = [observed(flow, name, n=5, first="2020-01-01T00:00:00Z", last="2020-01-01T00:02:00Z")]
    assert matches(pattern, five)
    spread = [
        observed(flow, name, n=1, first=f"2020-01-01T00:0{i}:00Z", ident=f"observed-data--{i}")
        for i in range(5)
    ]
    assert not matches(pattern, spread)  # five sightings over four minutes


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("file:name = 'a'", "no viable alternative"),
        ("[file:name = 'a'", "mismatched input"),
        ("[file:name ~ 'a']", "token recognition|no viable|mismatched|extraneous"),
        ("[file:size IN (1, 'a')]", "share one type"),
        ("[file:name = 'a'] WITHIN 0 SECONDS", "positive"),
        ("[file:name = 'a'] REPEATS 0 TIMES", "at least 1"),
        ("[file:created = t'2014-02-30T07:03:17Z']", "timestamp"),
        ("[file:name MATCHES '(a)\\\\1']", "RE2"),
        ("[file:name MATCHES '(?=a)']", "RE2"),
        ("[ipv4-addr:value ISSUBSET '10.0.0.1']", "CIDR"),
        ("[ipv4-addr:value ISSUBSET 'ten/8']", "address"),
    ],
)
def test_invalid_patterns_raise_value_error_with_reason(pattern, reason):
    with pytest.raises(ValueError, match=reason) as info:
        compile_pattern(pattern)
    assert isinstance(info.value, PatternError)
    assert pattern in str(info.value) or reason in str(info.value)


def test_pathological_regex_is_linear():
    """A shared `(a+)+$` must not stall: RE2 answers without backtracking."""
    data = [observed({"type": "file", "name": "a" * 50_000 + "!"})]
    assert matches("[file:name MATCHES '(a+)+$']", data) is False


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"number_observed": 0}, "number_observed"),
        ({"first_observed": "2020-01-02T00:00:00Z", "last_observed": "2020-01-01T00:00:00Z"},
         "after"),
        ({"first_observed": "yesterday"}, "timestamp|does not match"),
    ],
)
def test_malformed_observed_data_raises_value_error(bad, reason):
    sdo = observed({"type": "file", "name": "a"})
    sdo.update(bad)
    with pytest.raises(ValueError, match=reason):
        matches("[file:name = 'a']", [sdo])
