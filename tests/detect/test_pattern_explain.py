"""The compiled pattern's reusable parts: its atoms (for a candidate index) and explanations."""

from __future__ import annotations

from shieldwall.detect import ObservationSet, compile_pattern
from shieldwall.detect.pattern import STAR


def _observed(i, *objects, stamp="2020-01-01T00:00:00Z"):
    return {
        "type": "observed-data",
        "id": f"observed-data--{i:08d}-0000-4000-8000-000000000000",
        "first_observed": stamp,
        "last_observed": stamp,
        "number_observed": 1,
        "objects": {str(k): o for k, o in enumerate(objects)},
    }


def test_atoms_list_every_comparison_in_source_order():
    pattern = compile_pattern(
        "[network-traffic:dst_ref.value ISSUBSET '10.0.0.0/8' AND "
        "network-traffic:dst_port NOT IN (22, 23)] FOLLOWEDBY "
        "[file:hashes.'SHA-256' = h'00ff' OR EXISTS file:extensions.'x-a'.items[*]]"
    )
    described = [
        (a.object_type, a.property_path, a.operator, a.value, a.negated) for a in pattern.atoms
    ]
    assert described == [
        ("network-traffic", "dst_ref.value", "ISSUBSET", "10.0.0.0/8", False),
        ("network-traffic", "dst_port", "IN", (22, 23), True),
        ("file", "hashes.'SHA-256'", "=", b"\x00\xff", False),
        ("file", "extensions.'x-a'.items[*]", "EXISTS", None, False),
    ]
    assert pattern.atoms[3].path.steps == ("extensions", "x-a", "items", STAR)


def test_explanation_names_observation_object_and_value():
    observed = [
        _observed(0, {"type": "domain-name", "value": "good.test"}),
        _observed(1, {"type": "ipv4-addr", "value": "10.1.2.3"},
                  {"type": "network-traffic", "dst_ref": "0", "dst_port": 443}),
        _observed(2, {"type": "domain-name", "value": "x.evil.example"},
                  stamp="2020-01-01T00:01:00Z"),
    ]
    pattern = compile_pattern(
        "[network-traffic:dst_ref.value ISSUBSET '10.0.0.0/8' AND network-traffic:dst_port = 443]"
        " FOLLOWEDBY [domain-name:value LIKE '%.evil.example'] WITHIN 300 SECONDS"
    )
    result = pattern.explain(observed)
    assert result.success
    assert result.observed_data == (1, 2)
    hits = {(h.observed_data_id, h.object_key, str(h.atom), h.value) for h in result.all_hits()}
    assert hits == {
        ("observed-data--00000001-0000-4000-8000-000000000000", "1",
         "network-traffic:dst_ref.value ISSUBSET '10.0.0.0/8'", "10.1.2.3"),
        ("observed-data--00000001-0000-4000-8000-000000000000", "1",
         "network-traffic:dst_port = 443", 443),
        ("observed-data--00000002-0000-4000-8000-000000000000", "0",
         "domain-name:value LIKE '%.evil.example'", "x.evil.example"),
    }
    assert "x.evil.example" in result.render()
    sdos = pattern.matching_observed_data(observed)
    assert [s["id"][15:23] for s in sdos] == ["00000001", "00000002"]


def test_failed_explanation_shows_which_parts_held():
    observed = [_observed(0, {"type": "domain-name", "value": "x.evil.example"})]
    pattern = compile_pattern(
        "[domain-name:value LIKE '%.evil.example'] AND [url:value = 'http://x/']"
    )
    result = pattern.explain(observed)
    assert not result.success
    left, right = result.children
    assert left.success and not right.success
    assert left.all_hits()[0].value == "x.evil.example"
    assert pattern.matching_observed_data(observed) == []


def test_prepared_observations_are_reusable_across_patterns():
    data = ObservationSet([_observed(0, {"type": "url", "value": "http://a.example/wp-admin/x.php"})])
    assert compile_pattern("[url:value MATCHES '/wp-admin/.*\\\\.php$']").matches(data)
    assert not compile_pattern("[url:value = 'http://b.example/']").matches(data)
    assert compile_pattern("[url:value LIKE 'http://a.example/%']").matches(data)


def test_compile_is_cached_by_text():
    assert compile_pattern("[file:name = 'a']") is compile_pattern("[file:name = 'a']")
