"""Publishing blind sets: what goes in, what the object says, what is refused."""

from __future__ import annotations

import pytest

from shieldwall.blind import sets
from shieldwall.blind.tables import blind_handles
from shieldwall.keys.oprf import oprf_key, rotate
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.validate import object_error
from tests.blind.helpers import OWNER, SECRET_DOMAIN, SECRET_IP, owner_with_set, protected
from tests.factories import indicator
from tests.stix.test_values import test_rule as _values_rule


def test_set_holds_outputs_not_values(store, tmp_path):
    pub = owner_with_set(store, tmp_path)
    assert pub.values == 2
    (blind,) = [o for o in pub.objects if o["type"] == sets.BLIND_SET_TYPE]
    text = str(blind)
    assert SECRET_IP not in text and SECRET_DOMAIN not in text
    assert blind["key_epoch"] == 1 and blind["public_key"] == oprf_key(tmp_path).public_key.hex()
    assert blind["algorithm"].startswith("RFC 9497 OPRF(ristretto255, SHA-512) VOPRF")
    assert sorted(blind["entries"]) == ["domain-name:value", "ipv4-addr:value"]
    held = list(sets.held_sets(store))
    assert [s.count for s in held] == [2]
    # the handle table maps each handle back to its indicator, on the owner's node only
    with store.engine.connect() as conn:
        rows = conn.execute(blind_handles.select()).fetchall()
    assert {r.path for r in rows} == {"ipv4-addr:value", "domain-name:value"}
    assert {h for s in held for m in s.outputs.values() for h in m.values()} == \
        {r.handle for r in rows}


def test_set_is_valid_stix_with_its_extension(store, tmp_path):
    pub = owner_with_set(store, tmp_path)
    for obj in pub.objects:
        assert object_error(obj) is None, obj["type"]
    ext = next(o for o in pub.objects if o["type"] == "extension-definition")
    blind = next(o for o in pub.objects if o["type"] == sets.BLIND_SET_TYPE)
    assert blind["extensions"] == {ext["id"]: {"extension_type": "new-sdo"}}


def test_only_equality_patterns_and_own_indicators(store, tmp_path):
    like = protected(pattern="[domain-name:value LIKE '%.evil.example']")
    others = indicator("198.51.100.1", tlp=TLP.RED,
                       created_by_ref=member_identity_id("cert-west"))
    green = protected("198.51.100.2", tlp=TLP.GREEN)
    store.put_many([like, others, green, protected()], sets.Provenance(OWNER, "import"))
    entries, skipped = sets.select_entries(store, OWNER, TLP.RED)
    assert [(e.path, e.value) for e in entries] == [("ipv4-addr:value", SECRET_IP)]
    assert list(skipped) == [like["id"]]


def test_republish_and_rotation_revoke_the_old_sets(store, tmp_path):
    owner_with_set(store, tmp_path)
    first = sets.own_sets(store, OWNER)
    epoch = rotate(tmp_path)
    entries, _ = sets.select_entries(store, OWNER, TLP.RED)
    sets.publish(store, OWNER, oprf_key(tmp_path, epoch), entries)
    now = sets.own_sets(store, OWNER)
    assert {o["key_epoch"] for o in now} == {2}
    assert not {o["id"] for o in first} & {o["id"] for o in now}
    assert [s.epoch for s in sets.held_sets(store)] == [2]


def test_a_set_claiming_another_owner_is_ignored(store, tmp_path):
    pub = owner_with_set(store, tmp_path)
    blind = next(o for o in pub.objects if o["type"] == sets.BLIND_SET_TYPE)
    forged = blind | {"owner": "cert-west"}
    with pytest.raises(sets.BlindSetError, match="owner did not create it"):
        sets.parse(forged)


def test_set_marked_beyond_allies_is_refused(store, tmp_path):
    with pytest.raises(sets.BlindSetError, match="would reach no ally"):
        sets.publish(store, OWNER, oprf_key(tmp_path),
                     [sets.Entry("ipv4-addr:value", SECRET_IP, "indicator--x")], tlp=TLP.RED)


_PATHS = {"hash": "file:hashes.'SHA-256'", "domain": "domain-name:value",
          "ip": "ipv6-addr:value", "host": "network-traffic:dst_ref.value",
          "url": "url:value", "email": "email-addr:value"}


@pytest.mark.parametrize(("kind", "written", "canonical"), _values_rule.pytestmark[0].args[1])
def test_canonical_forms_agree_with_the_matcher(kind, written, canonical):
    """Every case of the matcher's canonicalisation tests: the owner's value (from a
    pattern written either way) is the matcher's, and an ally's telemetry written either
    way gives the same OPRF input."""
    from shieldwall.detect.exact import triggers
    from shieldwall.stix import values as canon

    path = "ipv4-addr:value" if kind == "ip" and ":" not in written else _PATHS[kind]
    lit = written.replace("\\", "\\\\").replace("'", "\\'")
    found = sets.protected_values({"pattern": f"[{path} = '{lit}']", "pattern_type": "stix"})
    assert not isinstance(found, str), found
    ((p, owner_value),) = found
    assert owner_value == triggers(f"[{path} = '{lit}']").atoms[0].values[0] == canonical
    form = canon.canonicalizer(path)
    assert {sets.oprf_input(path, form(written)), sets.oprf_input(path, form(canonical))} \
        == {sets.oprf_input(p, owner_value)}
