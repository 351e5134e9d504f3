"""The ally's side of blind matching: learn F_k(value) for values it observed, never k.

For each value the ally blinds it (RFC 9497 `Blind`: a fresh random scalar), sends the
blinded elements to the owner's endpoint in batches, and finalizes the answer with the
owner's public key from the blind set, which verifies the batch DLEQ proof: an answer made
with any other key (one per ally, to fingerprint them), a forged one, or one replayed from
an earlier request (made for other blinds) fails it and is rejected whole.

Outputs are cached per owner key (the key changes with the epoch), keyed by a digest of the
input: each distinct value costs one round trip per epoch, and a hunt's event path is a
lookup. Two batches are in flight at once, so the ally's blinding and finalizing overlap
the owner's evaluation; with `processes` > 1 and a `send` that can be pickled (`taxii.
blind_routes.RemoteEvaluate`), each process blinds, sends and verifies batches of its own.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from shieldwall.blind.tables import blind_cache
from shieldwall.errors import ShieldwallError
from shieldwall.store import Store

OUTPUT_BYTES = 16
KEY_BYTES = 16  # the cache key: a SHA-256 prefix of the OPRF input
ELEMENT_BYTES = 32
PROOF_BYTES = 64
BATCH = 4_096

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


def value_key(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:KEY_BYTES]


class Resolver:
    """Resolves OPRF inputs against one owner key; thread-safe for `resolve` callers one at
    a time (a hunt is one thread)."""

    def __init__(self, store: Store | None, public_key: bytes, epoch: int, send: Send, *,
                 batch: int = BATCH, in_flight: int = 2, processes: int = 1) -> None:
        self.store = store
        self.public_key = public_key
        self.key_id = public_key.hex()
        self.epoch = epoch
        self.send = send
        self.batch = batch
        self.in_flight = in_flight
        self.processes = processes
        self.stats = ResolveStats()
        self._mem: dict[bytes, bytes] | None = None

    def _cache(self) -> dict[bytes, bytes]:
        if self._mem is None:
            self._mem = {}
            if self.store is not None:
                q = select(blind_cache.c.value_key, blind_cache.c.output).where(
                    blind_cache.c.key_id == self.key_id)
                with self.store.engine.connect() as conn:
                    for k, out in conn.execute(q):
                        self._mem[bytes.fromhex(k)] = bytes.fromhex(out)
        return self._mem

    def cached(self, data: bytes) -> bytes | None:
        return self._cache().get(value_key(data))

    def outputs(self, inputs: list[bytes]) -> list[bytes]:
        """The output of each of `inputs` (distinct), in order: the matcher's bulk path. The
        cached ones cost a digest and a dict lookup each (no per-input function call); the
        others are asked of the owner in one `resolve`."""
        cache = self._cache()
        sha = hashlib.sha256
        got = [cache.get(sha(x).digest()[:KEY_BYTES]) for x in inputs]  # = value_key
        todo = [x for x, o in zip(inputs, got, strict=True) if o is None]
        self.stats.asked += len(inputs) - len(todo)
        self.stats.cached += len(inputs) - len(todo)
        if todo:
            fresh = self.resolve(todo)
            got = [fresh[x] if o is None else o for x, o in zip(inputs, got, strict=True)]
        return got  # type: ignore[return-value]

    def resolve(self, inputs: Iterable[bytes]) -> dict[bytes, bytes]:
        """input -> 128-bit output, for every input (cached or asked now)."""
        cache = self._cache()
        out: dict[bytes, bytes] = {}
        todo: list[bytes] = []
        for x in dict.fromkeys(inputs):
            hit = cache.get(value_key(x))
            if hit is None:
                todo.append(x)
            else:
                out[x] = hit
        self.stats.asked += len(out) + len(todo)
        self.stats.cached += len(out)
        if not todo:
            return out
        chunks = [todo[i:i + self.batch] for i in range(0, len(todo), self.batch)]
        jobs = [(self.send, self.public_key, self.epoch, c) for c in chunks]
        if self.processes > 1 and len(chunks) > 1 and _picklable(self.send):
            # The library holds the GIL: blinding and verifying (~270 us a value) use a
            # process each, every process sending its own batches.
            pool: Any = ProcessPoolExecutor(min(self.processes, len(chunks)))
        else:
            pool = ThreadPoolExecutor(self.in_flight)
        with pool:
            for chunk, (outs, sent, got) in zip(chunks, pool.map(_round_trip, jobs),
                                                strict=True):
                self.stats.requests += 1
                self.stats.bytes_sent += sent
                self.stats.bytes_received += got
                fresh = dict(zip(chunk, outs, strict=True))
                out.update(fresh)
                self._remember(fresh)
        return out

    def _remember(self, fresh: dict[bytes, bytes]) -> None:
        cache = self._cache()
        rows = []
        for x, o in fresh.items():
            k = value_key(x)
            if k not in cache:
                cache[k] = o
                rows.append({"key_id": self.key_id, "value_key": k.hex(), "output": o.hex()})
        if self.store is not None and rows:
            with self.store.engine.begin() as conn:
                conn.execute(insert(blind_cache), rows)


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
