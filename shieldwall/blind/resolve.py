"""The ally's side of blind matching: learn F_k(value) for values it observed, never k.

For each value the ally blinds it (RFC 9497 `Blind`: a fresh random scalar), sends the
blinded elements to the owner's endpoint in batches, and finalizes the answer with the
owner's public key from the blind set, which verifies the batch DLEQ proof: an answer made
with any other key (one per ally, to fingerprint them), a forged one, or one replayed from
an earlier request (made for other blinds) fails it and is rejected whole.

Outputs are cached per owner key (the key changes with the epoch), keyed by a keyed
function of the input (`CacheKeys`: never the value; unpredictable to whoever writes the
log lines, so no value can be made to take a protected value's place): each distinct
value costs one round trip per epoch, and a hunt's event path is a lookup. Two batches are
in flight at once, so the ally's blinding and finalizing overlap the owner's evaluation;
with `processes` > 1 and a `send` that can be pickled (`taxii.blind_routes.
RemoteEvaluate`), each process blinds, sends and verifies batches of its own.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
import secrets
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import delete, insert, select

from shieldwall.blind.tables import blind_cache_parts
from shieldwall.errors import ShieldwallError
from shieldwall.store import Store

OUTPUT_BYTES = 16
KEY_BYTES = 16  # the cache key (`CacheKeys`)
SHORT = 15  # an address of at most this many bytes is keyed by one AES block
SECRET_KV = "blind-cache-key"  # the store's key-value row holding the cache keys' secret
ELEMENT_BYTES = 32
PROOF_BYTES = 64
BATCH = 4_096
COMPACT_PARTS = 8  # stored parts of one key merged into one when a load finds more

# (epoch, body) -> (HTTP status or 0, body, error description)
Send = Callable[[int, bytes], tuple[int, bytes, str]]


class ResolveError(ShieldwallError):
    """The owner did not evaluate, or its answer failed verification; the message says which."""


class BadProof(ResolveError):
    """An answer whose DLEQ proof does not verify against the set's public key."""


@dataclass
class ResolveStats:
    asked: int = 0
    cached: int = 0
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


def digests(inputs: Sequence[bytes]) -> np.ndarray:
    """The 128-bit SHA-256 prefix of each input as two unsigned 64-bit halves, (n, 2).

    One SHA-256 each in a tight loop (~0.3-0.5 us; no per-input call of ours), the
    halves read by numpy from the joined digests."""
    sha = hashlib.sha256
    raw = np.frombuffer(b"".join([sha(x).digest() for x in inputs]), dtype=">u8")
    return raw.reshape(-1, 4)[:, :2].astype(np.uint64)


class CacheKeys:
    """The resolution cache's key of each OPRF input, as (n, 2) unsigned 64-bit halves.

    An address (kind `ip`) of at most 15 bytes, every IPv4 address among them, is keyed by
    AES-128 under the node's secret (`SECRET_KV`, made at first use) applied to one block:
    `0x10 | length`, the value, zeros. The block is injective and AES a permutation, so two
    addresses never share a key; and without the secret nobody can tell which key a value
    will have, so a line written into the ally's logs cannot be made to take a protected
    value's place in the cache (an evasion a fast unkeyed key would allow). A column of
    addresses is keyed with no Python per value: the blocks are cut from the Arrow buffers
    by numpy and encrypted in one call (~0.1 us a value, against ~0.4 us for a SHA-256
    each in a Python loop). Every other input is keyed by its 128-bit SHA-256 prefix.

    The secret is kept in the store beside the cache: it hides the addresses from no one
    holding the database (nor did SHA-256, which 2^32 digests enumerate for IPv4)."""

    def __init__(self, secret: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        # ECB of independent blocks: the block cipher as a keyed permutation, by design.
        self._cipher = Cipher(algorithms.AES(secret[:16]), modes.ECB())

    @classmethod
    def of(cls, store: Store | None) -> CacheKeys:
        """The store's keys (its secret made and stored at first use); a fresh secret for
        a resolver without a store (its cache lives as long as it does)."""
        if store is None:
            return cls(secrets.token_bytes(16))
        from sqlalchemy.exc import IntegrityError

        from shieldwall.store.schema import kv

        got = store.kv_get(SECRET_KV)
        if got is None:
            try:
                with store.engine.begin() as conn:  # the first process to store it wins
                    conn.execute(kv.insert().values(key=SECRET_KV,
                                                    value=secrets.token_hex(16)))
            except IntegrityError:
                pass
            got = store.kv_get(SECRET_KV)
        assert got is not None
        return cls(bytes.fromhex(got))

    def _encrypt(self, blocks: np.ndarray) -> np.ndarray:
        enc = self._cipher.encryptor()
        out = enc.update(blocks.tobytes()) + enc.finalize()
        return np.frombuffer(out, ">u8").reshape(-1, 2).astype(np.uint64)

    def of_inputs(self, inputs: Sequence[bytes]) -> np.ndarray:
        """The key of each input (`kind` newline value)."""
        keys = np.empty((len(inputs), 2), np.uint64)
        short = [i for i, x in enumerate(inputs)
                 if len(x) <= 3 + SHORT and x.startswith(b"ip\n")]
        if short:
            blocks = np.zeros((len(short), 16), np.uint8)
            for row, i in enumerate(short):
                v = inputs[i][3:]
                blocks[row, 0] = 0x10 | len(v)
                blocks[row, 1:1 + len(v)] = np.frombuffer(v, np.uint8)
            keys[short] = self._encrypt(blocks)
        if len(short) < len(inputs):
            rest = np.ones(len(inputs), bool)
            rest[short] = False
            keys[rest] = digests([x for x, r in zip(inputs, rest.tolist(), strict=True) if r])
        return keys

    def of_values(self, kind: str, values: pa.Array) -> np.ndarray:
        """The key of `kind` newline value for each of `values` (strings, no nulls);
        addresses without Python per value."""
        if kind != "ip" or not len(values):
            return self.of_inputs(_joined(kind, values))
        _, offsets_buf, data_buf = values.buffers()
        offsets = np.frombuffer(offsets_buf, np.int32, len(values) + 1, values.offset * 4)
        lengths = np.diff(offsets)
        data = np.zeros(int(offsets[-1]) + 16, np.uint8)
        if data_buf is not None:
            data[:offsets[-1]] = np.frombuffer(data_buf, np.uint8, int(offsets[-1]))
        short = lengths <= SHORT
        starts, n = offsets[:-1][short], lengths[short]
        # each value's 15 bytes from a sliding window over the data, bytes past its end zeroed
        window = np.lib.stride_tricks.as_strided(data, (len(data) - SHORT + 1, SHORT), (1, 1))
        blocks = np.empty((len(starts), 16), np.uint8)
        blocks[:, 1:] = window[starts]
        blocks[:, 1:] *= np.arange(SHORT, dtype=np.int32) < n[:, None]
        blocks[:, 0] = 0x10 | n
        keys = np.empty((len(values), 2), np.uint64)
        keys[short] = self._encrypt(blocks)
        if not short.all():
            long = np.flatnonzero(~short)
            keys[long] = self.of_inputs(_joined(kind, values.take(pa.array(long))))
        return keys


def _joined(kind: str, values: pa.Array) -> list[bytes]:
    """`kind` newline value, as bytes, for each of `values`."""
    joined = pc.binary_join_element_wise(f"{kind}\n", values, "")
    return pc.cast(joined, pa.large_binary()).to_pylist()


def _halves(packed: bytes) -> np.ndarray:
    """16-byte records (digests, outputs) as (n, 2) unsigned 64-bit halves."""
    return np.frombuffer(packed, dtype=">u8").reshape(-1, 2).astype(np.uint64)


def output_bytes(halves: np.ndarray) -> bytes:
    """Outputs (or digests) as (n, 2) halves, or one as a row, back to their 16 bytes each."""
    return halves.astype(">u8").tobytes()


class OutputCache:
    """Outputs by input digest as sorted arrays: a lookup of n inputs is one `searchsorted`
    over the digests' first halves (a contiguous array), not n dict lookups. Entries added
    (`add`) are merged and sorted at the next lookup."""

    def __init__(self) -> None:
        self.firsts = np.empty(0, np.uint64)  # the digests' first halves, sorted
        self.keys = np.empty((0, 2), np.uint64)
        self.outs = np.empty((0, 2), np.uint64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self.keys) + sum(len(k) for k, _ in self._pending)

    def add(self, keys: np.ndarray, outs: np.ndarray) -> None:
        if len(keys):
            self._pending.append((keys, outs))

    def _merge(self) -> None:
        if self._pending:
            keys = np.concatenate([self.keys, *(k for k, _ in self._pending)])
            outs = np.concatenate([self.outs, *(o for _, o in self._pending)])
            order = np.argsort(keys[:, 0], kind="stable")
            self.keys, self.outs = keys[order], outs[order]
            self.firsts = np.ascontiguousarray(self.keys[:, 0])
            self._pending = []

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The row of each key in `outs`, -1 where it is not cached."""
        self._merge()
        n = len(self.keys)
        if not n or not len(keys):
            return np.full(len(keys), -1, np.int64)
        # The keys sorted first: a searchsorted of sorted keys walks the cache in order
        # (51,000 keys in a cache of 51,000: ~1.5 ms with the sort, ~6 ms without).
        order = np.argsort(keys[:, 0]) if len(keys) > 1_000 else None
        first = keys[:, 0] if order is None else keys[order, 0]
        at = np.minimum(np.searchsorted(self.firsts, first), n - 1)
        if order is not None:
            at[order] = at.copy()
        found = (self.firsts[at] == keys[:, 0]) & (self.keys[at, 1] == keys[:, 1])
        return np.where(found, at, -1)

    @classmethod
    def of(cls, keys: CacheKeys, inputs: Sequence[bytes], outputs: Sequence[bytes]
           ) -> OutputCache:
        cache = cls()
        cache.add(keys.of_inputs(inputs), _halves(b"".join(outputs)))
        return cache


class Resolver:
    """Resolves OPRF inputs against one owner key; thread-safe for `resolve` callers one at
    a time (a hunt is one thread)."""

    def __init__(self, store: Store | None, public_key: bytes, epoch: int, send: Send, *,
                 batch: int = BATCH, in_flight: int = 2, processes: int = 1,
                 keys: CacheKeys | None = None, spawn: bool = False) -> None:
        self.store = store
        self.public_key = public_key
        self.key_id = public_key.hex()
        self.epoch = epoch
        self.send = send
        self.batch = batch
        self.in_flight = in_flight
        self.processes = processes
        self.stats = ResolveStats()
        self.mem: OutputCache | None = None
        self._keys = keys
        # Worker processes started afresh, not forked: for a caller with threads of its
        # own (`serve`), whose locks a forked child could inherit held.
        self.spawn = spawn

    @property
    def keys(self) -> CacheKeys:
        if self._keys is None:
            self._keys = CacheKeys.of(self.store)
        return self._keys

    def _cache(self) -> OutputCache:
        if self.mem is None:
            self.mem = OutputCache()
            if self.store is not None:
                self._load(self.mem)
        return self.mem

    def _load(self, cache: OutputCache) -> None:
        """The stored parts of this key (a few rows, however many values); more than
        `COMPACT_PARTS` are merged into one."""
        assert self.store is not None
        t = blind_cache_parts
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(t.c.part, t.c.value_keys, t.c.outputs)
                                .where(t.c.key_id == self.key_id)).all()
        for _, keys, outs in rows:
            cache.add(_halves(keys), _halves(outs))
        if len(rows) > COMPACT_PARTS:
            cache.find(np.empty((0, 2), np.uint64))  # merged and sorted
            with self.store.engine.begin() as conn:
                conn.execute(delete(t).where(t.c.key_id == self.key_id,
                                             t.c.part.in_([r[0] for r in rows])))
                self._insert(conn, cache.keys, cache.outs)

    def _insert(self, conn: Any, keys: np.ndarray, outs: np.ndarray) -> None:
        conn.execute(insert(blind_cache_parts), [{
            "key_id": self.key_id, "part": secrets.randbits(31), "count": len(keys),
            "value_keys": output_bytes(keys), "outputs": output_bytes(outs)}])

    def cached(self, data: bytes) -> bytes | None:
        row = int(self._cache().find(self.keys.of_inputs([data]))[0])
        return output_bytes(self._cache().outs[row]) if row >= 0 else None

    def outputs(self, inputs: Sequence[bytes]) -> np.ndarray:
        """The output of each of `inputs` (distinct), in order, as (n, 2) unsigned 64-bit
        halves (`output_bytes` gives one's bytes)."""
        return self.outputs_of(self.keys.of_inputs(inputs),
                               lambda todo: [inputs[i] for i in todo.tolist()])

    def outputs_of(self, keys: np.ndarray,
                   inputs: Callable[[np.ndarray], list[bytes]]) -> np.ndarray:
        """The outputs of the distinct inputs whose cache keys are `keys` (`CacheKeys`), in
        order: the matcher's bulk path. The cached ones cost one `searchsorted` for all;
        the others (`inputs(positions)` gives them) are asked of the owner in one
        `resolve`."""
        cache = self._cache()
        rows = cache.find(keys)
        todo = np.flatnonzero(rows < 0)
        self.stats.asked += len(keys) - len(todo)
        self.stats.cached += len(keys) - len(todo)
        if len(todo):
            self.resolve(inputs(todo))
            rows = cache.find(keys)  # the new outputs were merged in: rows moved
        return cache.outs[rows]

    def known(self, keys: np.ndarray) -> np.ndarray:
        """The cached output's row of each key, -1 where none is (nothing is asked)."""
        return self._cache().find(keys)

    def resolve(self, inputs: Iterable[bytes]) -> dict[bytes, bytes]:
        """input -> 128-bit output, for every input (cached or asked now)."""
        cache = self._cache()
        unique = list(dict.fromkeys(inputs))
        keys = self.keys.of_inputs(unique)
        rows = cache.find(keys)
        out = {x: output_bytes(cache.outs[r]) for x, r in zip(unique, rows.tolist(),
                                                               strict=True) if r >= 0}
        todo = [x for x, r in zip(unique, rows.tolist(), strict=True) if r < 0]
        todo_keys = keys[rows < 0]
        self.stats.asked += len(unique)
        self.stats.cached += len(out)
        if todo:
            todo, todo_keys = self._from_digests(todo, todo_keys, out)
        if not todo:
            return out
        starts = range(0, len(todo), self.batch)
        chunks = [todo[i:i + self.batch] for i in starts]
        jobs = [(self.send, self.public_key, self.epoch, c) for c in chunks]
        if self.processes > 1 and len(chunks) > 1 and _picklable(self.send):
            # The library holds the GIL: blinding and verifying (~270 us a value) use a
            # process each, every process sending its own batches.
            pool: Any = ProcessPoolExecutor(
                min(self.processes, len(chunks)),
                mp_context=multiprocessing.get_context("spawn") if self.spawn else None)
        else:
            pool = ThreadPoolExecutor(self.in_flight)
        with pool:
            for i, chunk, (outs, sent, got) in zip(starts, chunks, pool.map(_round_trip, jobs),
                                                   strict=True):
                self.stats.requests += 1
                self.stats.bytes_sent += sent
                self.stats.bytes_received += got
                out.update(zip(chunk, outs, strict=True))
                self._remember(todo_keys[i:i + len(chunk)], _halves(b"".join(outs)))
        return out

    def _from_digests(self, todo: list[bytes], todo_keys: np.ndarray, out: dict[bytes, bytes]
                      ) -> tuple[list[bytes], np.ndarray]:
        """Addresses cached before `CacheKeys` keyed them by AES (by their SHA-256 prefix,
        as every input then was): found so, added to `out` and stored under their new key,
        not asked of the owner again (an upgraded node would otherwise ask its whole cache
        again, and set off the owner's alarm). The inputs still to ask, and their keys."""
        short = [i for i, x in enumerate(todo) if len(x) <= 3 + SHORT and x.startswith(b"ip\n")]
        if not short:
            return todo, todo_keys
        cache = self._cache()
        rows = cache.find(digests([todo[i] for i in short]))
        found = [(i, r) for i, r in zip(short, rows.tolist(), strict=True) if r >= 0]
        if not found:
            return todo, todo_keys
        at = [i for i, _ in found]
        outs = cache.outs[[r for _, r in found]]
        out.update(zip([todo[i] for i in at], [output_bytes(o) for o in outs], strict=True))
        self.stats.cached += len(found)
        self._remember(todo_keys[at], outs)
        left = np.ones(len(todo), bool)
        left[at] = False
        return [x for x, k in zip(todo, left.tolist(), strict=True) if k], todo_keys[left]

    def _remember(self, keys: np.ndarray, outs: np.ndarray) -> None:
        """Outputs just resolved: cached, and stored as one part."""
        self._cache().add(keys, outs)
        if self.store is not None and len(keys):
            with self.store.engine.begin() as conn:
                self._insert(conn, keys, outs)


def resolvers_for(store: Store | None, sets: Sequence[Any], send_for: Callable[[str], Send],
                  *, processes: int = 1, spawn: bool = False) -> dict[str, Resolver]:
    """One resolver per owner key the `sets` use (hex of the public key), each asking its
    owner over `send_for(owner)`: what every blind run (hunt, watch, arrivals) matches
    with."""
    out: dict[str, Resolver] = {}
    for s in sets:
        if s.public_key.hex() not in out:
            out[s.public_key.hex()] = Resolver(store, s.public_key, s.epoch,
                                               send_for(s.owner), processes=processes,
                                               spawn=spawn)
    return out


def _round_trip(job: tuple[Send, bytes, int, list[bytes]]) -> tuple[list[bytes], int, int]:
    """Blind a batch, have it evaluated, verify and unblind: (outputs, bytes sent, got)."""
    from voprf import ristretto

    send, public_key, epoch, chunk = job
    clients, blinded = [], []
    for x in chunk:
        c, b = ristretto.Client.blind(x)
        clients.append(c)
        blinded.append(bytes(b.serialize()))
    body = b"".join(blinded)
    status, answer, why = send(epoch, body)
    if status != 200:
        raise ResolveError(f"the owner did not evaluate (HTTP {status}): {why}"
                           if status else why)
    return finalize(clients, answer, public_key), len(body), len(answer)


def _picklable(obj: object) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


def finalize(clients: list[object], answer: bytes, public_key: bytes) -> list[bytes]:
    """Verify the batch proof against `public_key` and unblind; BadProof when it fails."""
    from voprf import ristretto

    if len(answer) != len(clients) * ELEMENT_BYTES + PROOF_BYTES:
        raise BadProof(f"the owner's answer has {len(answer)} bytes, not the "
                       f"{len(clients) * ELEMENT_BYTES + PROOF_BYTES} of {len(clients)} "
                       "evaluated elements and a proof")
    try:
        pk = ristretto.PublicKey.deserialize(public_key)
        batch = ristretto.VerifiableBatchOutput.deserialize(answer)
        outs = ristretto.Client.finalize_batch(clients, batch, pk)
    except ValueError as exc:
        raise BadProof(f"the owner's answer failed verification against the set's public "
                       f"key ({exc}); nothing from it was used") from None
    except BaseException as exc:
        # voprf 0.2.0's finalize_batch panics (pyo3 PanicException, a BaseException) on a
        # proof that fails, where finalize raises ValueError: the same verdict.
        if type(exc).__name__ != "PanicException":
            raise
        raise BadProof("the owner's answer failed verification against the set's public "
                       "key (invalid proof); nothing from it was used") from None
    return [bytes(o)[:OUTPUT_BYTES] for o in outs]
