"""Secret keys kept in the node's home: made once, read by every process of the node.

`<home>/keys/NAME.key` holds 32 random bytes (hex), readable by the node's user alone.
Every worker of a node, and the node after a restart, reads the same key: the first
process to need it writes it to a private temporary file and links it into place, which
fails when another process got there first (then that one's key is read). No process
ever reads a half-written key.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

from shieldwall.errors import ShieldwallError

KEY_BYTES = 32
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


class KeyFileError(ShieldwallError):
    """A key in the home cannot be read or made; the message says which and why."""


def node_key(home: Path, name: str) -> bytes:
    """The node's key called `name` (made on first use)."""
    if not _NAME.match(name):
        raise ValueError(f"not a key name: {name!r}")
    folder = home / "keys"
    path = folder / f"{name}.key"
    if not path.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(KEY_BYTES) + "\n")
                f.flush()
                os.fsync(f.fileno())
            # Fails when another process of the node made it first: that one is used.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path}: not a key this node wrote ({exc}); remove it to make a "
                        "new one (cursors handed out before stop working)") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path}: a key is {KEY_BYTES} bytes, this one {len(key)}; remove "
                        "it to make a new one")
    return key
