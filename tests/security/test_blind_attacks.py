"""Attacks on blind matching (docs/blind.md, "Threat model").

- An ally holding everything it receives (the set, the owner's public key, its own cache)
  enumerates 2^20 IPv4 addresses offline: it finds nothing. The control, the same attack
  on a plain SHA-256 set (what MISP's Bloom exports amount to), finds the value.
- An answer under another key, forged, or replayed from an earlier request is rejected.
- Over a real node: a peer that is not an ally cannot evaluate; an ally over its daily
  quota is refused at once (429) and the owner's log says so; no answer carries a value.
"""

from __future__ import annotations

import hashlib
import ipaddress

import httpx
import pytest
from voprf import ristretto

from shieldwall.blind.resolve import BadProof, Resolver, finalize
from shieldwall.blind.sets import OUTPUT_BYTES, held_sets, oprf_input
from shieldwall.config import load_config
from shieldwall.policy import Members
from shieldwall.store import Store
from tests.blind.helpers import SECRET_IP, local_send, owner_with_set
from tests.taxii.conftest import make_home, start_server

SAMPLE = ipaddress.ip_network("203.0.0.0/12")  # 2^20 addresses, the secret among them


def _sample() -> list[str]:
    base = int(SAMPLE.network_address)
    return [str(ipaddress.IPv4Address(base + i)) for i in range(SAMPLE.num_addresses)]


def test_offline_enumeration_finds_nothing_and_the_sha256_control_does(sqlite_store, tmp_path):
    store = sqlite_store
    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    outputs = s.outputs["ipv4-addr:value"]
    # the ally's cache: what it resolved honestly (its own telemetry, not the secret)
    resolver = Resolver(store, s.public_key, s.epoch, local_send(tmp_path, store))
    seen = [oprf_input("ipv4-addr:value", f"198.51.100.{i}") for i in range(50)]
    cache = resolver.resolve(seen)
    sample = _sample()
    assert SECRET_IP in sample and len(sample) == 2 ** 20
    prefix = oprf_input("ipv4-addr:value", "")  # what the owner evaluates: kind, value
    xs = [prefix + v.encode() for v in sample]
    assert oprf_input("ipv4-addr:value", SECRET_IP) in xs
    pk = s.public_key
    found = sum(hashlib.sha512(x).digest()[:OUTPUT_BYTES] in outputs for x in xs)
    found += sum(hashlib.sha256(pk + x).digest()[:OUTPUT_BYTES] in outputs for x in xs)
    found += sum(hashlib.sha256(x).digest()[:OUTPUT_BYTES] in outputs for x in xs)
    found += sum(cache.get(x, b"") in outputs for x in xs)  # the ally's own cache
    assert found == 0
    # control: a plain SHA-256 set of the same value falls to the same enumeration at once
    plain = {hashlib.sha256(SECRET_IP.encode()).digest()}
    assert sum(hashlib.sha256(v.encode()).digest() in plain for v in sample) == 1


def test_forged_and_replayed_answers_are_rejected(sqlite_store, tmp_path):
    store = sqlite_store
    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    send = local_send(tmp_path, store)
    x = oprf_input("ipv4-addr:value", "198.51.100.9")
    client, blinded = ristretto.Client.blind(x)
    status, answer, _ = send(s.epoch, bytes(blinded.serialize()))
    assert status == 200
    assert finalize([client], answer, s.public_key)  # the honest answer verifies
    # replayed: the same answer to a new request (new blinds) for the same value
    client2, _ = ristretto.Client.blind(x)
    with pytest.raises(BadProof):
        finalize([client2], answer, s.public_key)
    # forged: a flipped bit in the evaluated element, or in the proof
    for i in (70, 3):
        bad = bytearray(answer)
        bad[i] ^= 1
        with pytest.raises(BadProof):
            finalize([client], bytes(bad), s.public_key)
    with pytest.raises(BadProof):  # truncated
        finalize([client], answer[:-1], s.public_key)

    # a resolver whose owner replays one stored answer to every request accepts nothing
    def replaying(epoch: int, body: bytes) -> tuple[int, bytes, str]:
        return 200, answer, ""

    with pytest.raises(BadProof):
        Resolver(None, s.public_key, s.epoch, replaying).resolve([x])


@pytest.fixture(scope="module")
def owner_node(tmp_path_factory):
    root = tmp_path_factory.mktemp("blind-owner")
    home = make_home(root)
    cfg = load_config(home)
    cfg.blind.daily_quota = 10
    cfg.save()
    store = Store.open(cfg.db_url)
    try:
        owner_with_set(store, home)
        reg = Members(store.engine)
        tokens = {"cert-east": reg.add("cert-east", "ally"),
                  "partner-x": reg.add("partner-x", "partner")}
        (s,) = held_sets(store)
    finally:
        store.close()
    server = start_server(home, "--no-federate")
    yield server, tokens, s
    server.stop()


def _post(server, token: str, n: int, epoch: int) -> httpx.Response:
    body = b"".join(bytes(ristretto.Client.blind(f"v{i}".encode())[1].serialize())
                    for i in range(n))
    return httpx.post(server.api("blind/evaluate/"), params={"epoch": str(epoch)},
                      content=body, headers={"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/octet-stream"},
                      timeout=30)


def test_only_allies_evaluate_and_the_quota_holds(owner_node):
    server, tokens, s = owner_node
    assert _post(server, "not-a-token", 1, s.epoch).status_code in (400, 401)
    r = _post(server, tokens["partner-x"], 1, s.epoch)
    assert r.status_code == 403 and "allies only" in r.json()["description"]
    ok = _post(server, tokens["cert-east"], 8, s.epoch)
    assert ok.status_code == 200 and len(ok.content) == 64 + 8 * 32
    assert ok.headers["X-Shieldwall-Blind-Epoch"] == str(s.epoch)
    over = _post(server, tokens["cert-east"], 3, s.epoch)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert "daily quota of 10" in over.json()["description"]
    stale = _post(server, tokens["cert-east"], 1, s.epoch + 1)
    assert stale.status_code == 409
    log = "\n".join(server.log)
    assert "blind matching alarm: ally cert-east" in log
    assert SECRET_IP not in log
