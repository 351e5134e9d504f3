"""The ally's resolution: verified answers, one round trip per distinct value per epoch."""

from __future__ import annotations

import os

import pytest

from shieldwall.blind.resolve import BadProof, ResolveError, Resolver, _halves, output_bytes
from shieldwall.blind.sets import held_sets, oprf_input
from shieldwall.keys.oprf import oprf_key, rotate
from shieldwall.store import Store
from tests.blind.helpers import SECRET_IP, local_send, owner_with_set


def test_resolution_matches_the_set_and_is_cached(store, tmp_path):
    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    send = local_send(tmp_path, store)
    r = Resolver(store, s.public_key, s.epoch, send, batch=2)
    inputs = [oprf_input("ipv4-addr:value", v) for v in (SECRET_IP, "198.51.100.1",
                                                         "198.51.100.2")]
    out = r.resolve(inputs)
    assert out[inputs[0]] in s.outputs["ipv4-addr:value"]
    assert out[inputs[1]] not in s.outputs["ipv4-addr:value"]
    assert r.stats.requests == 2  # batches of 2
    # a new resolver (a new hunt, a restart) reads the cache: no round trip
    r2 = Resolver(store, s.public_key, s.epoch, send)
    assert r2.resolve(inputs) == out and r2.stats.requests == 0 and r2.stats.cached == 3


def test_a_new_epoch_has_its_own_cache(store, tmp_path):
    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    send = local_send(tmp_path, store)
    x = oprf_input("ipv4-addr:value", SECRET_IP)
    Resolver(store, s.public_key, s.epoch, send).resolve([x])
    epoch = rotate(tmp_path)
    pk2 = oprf_key(tmp_path, epoch).public_key
    r = Resolver(store, pk2, epoch, send)
    r.resolve([x])
    assert r.stats.requests == 1


def test_an_answer_under_another_key_is_rejected(store, tmp_path):
    """An owner answering one ally with a key of its own (to fingerprint it) is caught."""
    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    other = tmp_path / "other"
    send = local_send(other, store)  # evaluates with another home's key
    with pytest.raises(BadProof):
        Resolver(None, s.public_key, s.epoch, send).resolve([b"ip\n198.51.100.9"])


def test_refusals_are_errors_with_the_owners_reason(store, tmp_path):
    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    send = local_send(tmp_path, store, tier="partner")
    with pytest.raises(ResolveError, match=r"HTTP 403.*allies only"):
        Resolver(None, s.public_key, s.epoch, send).resolve([b"ip\n198.51.100.9"])


def test_the_cache_is_stored_in_parts_and_compacted_on_load(store, tmp_path):
    from sqlalchemy import func, select

    from shieldwall.blind.resolve import COMPACT_PARTS
    from shieldwall.blind.tables import blind_cache_parts

    ally = Store.open(f"sqlite:///{tmp_path / 'ally.db'}")  # the owner writes to `store`

    def parts() -> int:
        with ally.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(blind_cache_parts))
                       .scalar_one())

    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    send = local_send(tmp_path, store)
    inputs = [oprf_input("ipv4-addr:value", f"198.51.100.{i}") for i in range(COMPACT_PARTS + 2)]
    inputs.append(oprf_input("ipv4-addr:value", SECRET_IP))
    out = Resolver(ally, s.public_key, s.epoch, send, batch=1).resolve(inputs)
    assert parts() == len(inputs)  # a part per batch answered
    r = Resolver(ally, s.public_key, s.epoch, send)
    got = r.outputs(inputs)  # the bulk path: (n, 2) halves, in order
    assert r.stats.requests == 0 and r.stats.cached == len(inputs)
    assert [output_bytes(g) for g in got] == [out[x] for x in inputs]
    assert parts() == 1  # more than COMPACT_PARTS: merged into one on load
    assert r.cached(inputs[-1]) in s.outputs["ipv4-addr:value"]
    assert r.cached(oprf_input("ipv4-addr:value", "192.0.2.1")) is None
    again = Resolver(ally, s.public_key, s.epoch, send)
    assert again.resolve(inputs) == out and again.stats.requests == 0
    ally.close()


def test_outputs_of_cached_and_new_inputs_together_are_each_their_own(store, tmp_path):
    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    send = local_send(tmp_path, store)
    earlier = [oprf_input("ipv4-addr:value", f"10.0.0.{i}") for i in range(7)]
    Resolver(store, s.public_key, s.epoch, send).outputs(earlier)
    now = [*earlier[:3], *(oprf_input("ipv4-addr:value", v)
                           for v in ("198.51.100.1", SECRET_IP, "198.51.100.7"))]
    r = Resolver(store, s.public_key, s.epoch, send)  # loads the earlier ones, asks 3
    got = [output_bytes(o) for o in r.outputs(now)]
    assert r.stats.cached == 3 and r.stats.requests == 1
    truth = Resolver(None, s.public_key, s.epoch, send).resolve(now)
    assert got == [truth[x] for x in now]
    assert [o in s.outputs["ipv4-addr:value"] for o in got] == [False] * 4 + [True, False]


class _HomeSend:
    """A `send` that pickles (a home and a database), as `RemoteEvaluate` does: each worker
    process opens its own evaluator."""

    def __init__(self, home, db_url: str) -> None:  # type: ignore[no-untyped-def]
        self.home, self.db_url, self._send = home, db_url, None

    def __getstate__(self):  # type: ignore[no-untyped-def]
        return {"home": self.home, "db_url": self.db_url, "_send": None}

    def __call__(self, epoch: int, body: bytes):  # type: ignore[no-untyped-def]
        if self._send is None:
            self._send = local_send(self.home, Store.open(self.db_url))
        with open(self.home / "senders", "a") as f:  # which process sent
            f.write(f"{os.getpid()}\n")
        return self._send(epoch, body)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_worker_processes_started_afresh_resolve_as_threads_do(store, tmp_path):
    """`spawn` (serve's retro-hunt of arrivals): batches resolved by processes started
    afresh, the same outputs as one process's threads, the secret among them."""
    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    inputs = [oprf_input("ipv4-addr:value", v)
              for v in (SECRET_IP, *(f"198.51.100.{i}" for i in range(5)))]
    send = _HomeSend(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    spawned = Resolver(None, s.public_key, s.epoch, send, batch=2, processes=2, spawn=True)
    threads = Resolver(None, s.public_key, s.epoch, local_send(tmp_path, store), batch=2)
    out = spawned.resolve(inputs)
    assert spawned.stats.requests == 3
    senders = set((tmp_path / "senders").read_text().split())
    assert senders and str(os.getpid()) not in senders  # sent by the workers
    assert out == threads.resolve(inputs)
    assert out[inputs[0]] in s.outputs["ipv4-addr:value"]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_cache_keyed_by_digests_is_used_and_rekeyed(store, tmp_path):
    """A node upgraded from a cache keyed by SHA-256 prefixes: its cached addresses are
    found, not asked again (the owner would see its whole cache asked anew), and stored
    under their new key."""
    from sqlalchemy import func, select

    from shieldwall.blind.resolve import digests
    from shieldwall.blind.tables import blind_cache_parts

    owner_with_set(store, tmp_path)
    (s,) = held_sets(store)
    send = local_send(tmp_path, store)
    inputs = [oprf_input("ipv4-addr:value", v) for v in (SECRET_IP, "198.51.100.1")]
    outs = Resolver(None, s.public_key, s.epoch, send).resolve(inputs)
    old = Resolver(store, s.public_key, s.epoch, send)
    with store.engine.begin() as conn:  # the cache as the code before CacheKeys stored it
        old._insert(conn, digests(inputs), _halves(b"".join(outs[x] for x in inputs)))

    def parts() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(blind_cache_parts))
                       .scalar_one())

    r = Resolver(store, s.public_key, s.epoch, send)
    assert r.resolve(inputs) == outs and r.stats.requests == 0 and r.stats.cached == 2
    assert parts() == 2  # stored again under the new keys
    again = Resolver(store, s.public_key, s.epoch, send)
    assert again.cached(inputs[0]) == outs[inputs[0]]
    assert again.outputs(inputs).shape == (2, 2) and again.stats.requests == 0
    # an input never cached is still asked
    new = oprf_input("ipv4-addr:value", "198.51.100.2")
    again.resolve([new])
    assert again.stats.requests == 1
