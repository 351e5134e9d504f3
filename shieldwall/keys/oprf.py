"""The node's blind-matching keys: one RFC 9497 OPRF key (ristretto255-SHA512, VOPRF mode)
per key epoch, kept in the home and never sent anywhere.

The secret of epoch N is the 32-byte seed `<home>/keys/oprf-N.key` (made on first use by
`keys.home.node_key`, so every worker of a node reads the same one); the key pair is derived
from it with the RFC's `DeriveKeyPair(seed, info)`, `info` naming the epoch. The current
epoch is the number in `<home>/keys/oprf-epoch` (1 when absent). `rotate` moves to the next
epoch: blind sets published under an older one stop being evaluated, so allies fetch the
new sets and their caches of the old epoch are no longer used.

The library is `voprf` (Python bindings over the RustCrypto-based `voprf` crate); its
choice, and the RFC test vectors it passes, are in docs/blind.md and
tests/blind/test_rfc9497_vectors.py.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shieldwall.errors import ShieldwallError
from shieldwall.keys.home import node_key

SUITE = "OPRF(ristretto255, SHA-512)"
MODE = "VOPRF"
ALGORITHM = f"RFC 9497 {SUITE} {MODE}"
EPOCH_FILE = "oprf-epoch"
MAX_EPOCH = 1_000_000


class OprfKeyError(ShieldwallError):
    """The blind-matching key epoch in the home cannot be read; the message says how to fix."""


def key_info(epoch: int) -> bytes:
    """The RFC's `info` for DeriveKeyPair: binds the key to its epoch."""
    return f"shieldwall blind matching, key epoch {epoch}".encode()


def current_epoch(home: Path) -> int:
    path = home / "keys" / EPOCH_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 1
    except OSError as exc:
        raise OprfKeyError(f"{path}: cannot be read ({exc})") from None
    if not text.isdigit() or not 1 <= int(text) <= MAX_EPOCH:
        raise OprfKeyError(f"{path}: not a key epoch ({text[:20]!r}); write the epoch number "
                           "the node's blind sets were published with")
    return int(text)


def rotate(home: Path) -> int:
    """Move to the next epoch (its key is made on first use) and return it."""
    nxt = current_epoch(home) + 1
    folder = home / "keys"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / f".{EPOCH_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.write_text(f"{nxt}\n")
    os.replace(tmp, folder / EPOCH_FILE)
    oprf_key(home, nxt)  # make it now, so every worker reads the same one
    return nxt


@dataclass(frozen=True)
class OprfKey:
    """One epoch's key pair. `seed` is the secret: only the owner's processes see it."""

    epoch: int
    seed: bytes

    def evaluator(self) -> Any:
        from voprf import ristretto

        return ristretto.Evaluator.from_seed(self.seed, key_info(self.epoch))

    @property
    def public_key(self) -> bytes:
        return bytes(self.evaluator().public_key.serialize())

    @property
    def key_id(self) -> str:
        """A short public name of the key (its public key's SHA-256, 16 hex digits)."""
        return hashlib.sha256(self.public_key).hexdigest()[:16]

    def __repr__(self) -> str:  # the seed never shows in a log or a traceback
        return f"OprfKey(epoch={self.epoch})"


def oprf_key(home: Path, epoch: int | None = None) -> OprfKey:
    """The key of `epoch` (default: the current one), made on first use."""
    epoch = current_epoch(home) if epoch is None else epoch
    if not 1 <= epoch <= MAX_EPOCH:
        raise OprfKeyError(f"no key epoch {epoch}")
    return OprfKey(epoch, node_key(home, f"oprf-{epoch}"))
