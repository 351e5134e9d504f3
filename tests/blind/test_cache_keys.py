"""The resolution cache's keys (`blind.resolve.CacheKeys`) and the hunt's kept batches.

Addresses are keyed by AES under the node's secret, cut from Arrow buffers with no Python
per value; the column path and the per-input path must agree on every input, two inputs
never share a key, and nobody without the node's secret can tell an address's key (a line
written into the ally's logs cannot be made to take a protected value's place). A hunt
whose values hit matches the batches it kept while learning, with the same hits as when
it reads the files again.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.blind.hits import BlindMatcher
from shieldwall.blind.resolve import SECRET_KV, CacheKeys, Resolver
from shieldwall.blind.sets import held_sets, oprf_input
from shieldwall.detect.readers import LINE, TS, Observations
from shieldwall.store import Store
from tests.blind.helpers import SECRET_IP, local_send, owner_with_set

KEYS = CacheKeys(bytes(range(16)))
DST = "network-traffic:dst_ref.value"

_values = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),  # "::1" fits a block, most do not
    st.text(max_size=40),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_values, unique=True, max_size=60), st.sampled_from(["ip", "domain", "url"]))
def test_column_keys_equal_per_input_keys(values, kind):
    col = KEYS.of_values(kind, pa.array(values, pa.string()))
    one = KEYS.of_inputs([f"{kind}\n{v}".encode() for v in values])
    assert np.array_equal(col, one)
    # distinct inputs, distinct keys (addresses: a permutation of distinct blocks)
    assert len({tuple(k) for k in col.tolist()}) == len(values)


def test_a_sliced_column_is_keyed_as_its_values():
    values = pa.array(["10.0.0.1", "192.168.100.200", "x" * 30, "::1", ""])
    assert np.array_equal(KEYS.of_values("ip", values.slice(1, 3)),
                          KEYS.of_inputs([f"ip\n{v}".encode()
                                          for v in values.slice(1, 3).to_pylist()]))


def test_addresses_are_keyed_under_the_secret_others_by_sha256():
    ip, name = b"ip\n" + SECRET_IP.encode(), b"domain\nexample.org"
    other = CacheKeys(bytes(16))
    assert not np.array_equal(KEYS.of_inputs([ip]), other.of_inputs([ip]))
    # nothing in an address's key is its digest: it cannot be computed without the secret
    digest = np.frombuffer(hashlib.sha256(ip).digest()[:16], ">u8").astype(np.uint64)
    assert not np.array_equal(KEYS.of_inputs([ip])[0], digest)
    digest = np.frombuffer(hashlib.sha256(name).digest()[:16], ">u8").astype(np.uint64)
    assert np.array_equal(KEYS.of_inputs([name])[0], digest)
    assert np.array_equal(KEYS.of_inputs([name]), other.of_inputs([name]))


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_secret_is_made_once_per_store_and_kept(store, tmp_path):
    a = CacheKeys.of(store)
    secret = store.kv_get(SECRET_KV)
    assert secret and len(bytes.fromhex(secret)) == 16
    b = CacheKeys.of(Store.open(f"sqlite:///{tmp_path / 'store.db'}"))
    x = [oprf_input("ipv4-addr:value", SECRET_IP)]
    assert np.array_equal(a.of_inputs(x), b.of_inputs(x))
    assert store.kv_get(SECRET_KV) == secret
    # another node's store has another secret
    other = Store.open(f"sqlite:///{tmp_path / 'other.db'}")
    assert not np.array_equal(CacheKeys.of(other).of_inputs(x), a.of_inputs(x))


def _batches(n: int, secret_rows: set[int], seed: int = 3) -> list[Observations]:
    rng = random.Random(seed)
    out = []
    for b in range(0, n, 1_000):
        rows = range(b, min(n, b + 1_000))
        dst = [SECRET_IP if i in secret_rows else f"198.51.{rng.randrange(100)}.{i % 250}"
               for i in rows]
        table = pa.table({TS: pa.array([1_700_000_000_000_000 + i for i in rows], pa.int64()),
                          LINE: pa.array([i + 1 for i in rows], pa.int64()),
                          DST: pa.array(dst)})
        out.append(Observations(table, "conn.log", "zeek.conn"))
    return out


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_kept_batches_give_the_hits_a_second_reading_gives(store, tmp_path):
    owner_with_set(store, tmp_path)
    (s,) = list(held_sets(store))
    r = Resolver(store, s.public_key, s.epoch, local_send(tmp_path, store))
    secret_rows = {5, 1_999, 2_500}
    found = []
    for keep in (1 << 30, 10_000):  # all kept; too little kept: the batches read again
        hits: list = []  # type: ignore[type-arg]
        m = BlindMatcher([s], {s.public_key.hex(): r}, hits.append, learn=False, keep=keep)
        for obs in _batches(3_000, secret_rows):
            m.learn(obs)
        m.flush()
        assert m.hitting == 1
        kept = m.match_kept()
        assert kept == (keep > 10_000)
        if not kept:
            for obs in _batches(3_000, secret_rows):
                m.feed(obs)
        found.append(sorted((h.line, h.handle) for h in hits))
    assert found[0] == found[1] and [line for line, _ in found[0]] == [6, 2_000, 2_501]
