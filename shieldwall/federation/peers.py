"""Peers in the node's config, and the sync state kept for each in the store.

A peer is another member's node: its name (the member name it runs as, the same on every
node), its TAXII root URL, the file holding the token *this* node was issued there, its
tier (what policy lets it see from us), which collections to pull and to push to, and
the members it may relay to us (`relay_for`, see `rules.Arrival`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from shieldwall.config import PEER_AUTH, TIERS, NodeConfig, PeerConfig
from shieldwall.errors import ShieldwallError
from shieldwall.store import Store
from shieldwall.taxii.client import Credentials

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")  # an HTTP field name
STATE_KEY = "federation:state:"
PULL_KEY = "federation:pull:"
PUSH_KEY = "federation:push:"
DEFAULT_PULL = ("alliance",)


class PeerError(ShieldwallError):
    """A peer cannot be added or used; the message says what to fix."""


def add_peer(
    cfg: NodeConfig, name: str, url: str, token_file: str | Path, *, tier: str = "ally",
    pull: list[str] | None = None, push: list[str] | None = None, replace: bool = False,
    relay_for: list[str] | None = None, auth: str = "bearer", user: str | None = None,
    api_key_header: str | None = None, tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None, tls_ca: str | Path | None = None,
) -> PeerConfig:
    """Add (or with `replace`, update) a peer and save the config. `token_file` holds the
    secret `auth` needs (the bearer token, the Basic password, the API key); the config
    keeps only the file's path."""
    if not _NAME_RE.match(name):
        raise PeerError(f"invalid peer name {name!r}: use the member name the peer runs as")
    if name == cfg.member:
        raise PeerError(f"{name!r} is this node's own member name")
    if tier not in TIERS:
        raise PeerError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    if not re.match(r"^https?://[^/\s]+", url):
        raise PeerError(f"peer URL {url!r}: give the TAXII server root, e.g. "
                        "https://node.example.org:8021/")
    for member in relay_for or ():
        if member != "*" and not _NAME_RE.match(member):
            raise PeerError(f"--relay-for {member!r}: give a member name, or * for all")
        if member == cfg.member:
            raise PeerError(f"--relay-for {member!r}: no peer relays this node's own objects")
    if auth not in PEER_AUTH:
        raise PeerError(f"--auth {auth!r}: choose one of {', '.join(PEER_AUTH)}")
    if auth == "basic" and not user:
        raise PeerError("--auth basic needs --user (the password goes in --secret-file)")
    if auth == "api-key" and not (api_key_header and _HEADER_RE.match(api_key_header)):
        raise PeerError("--auth api-key needs --api-key-header, the header's name "
                        "(e.g. X-API-Key); the key goes in --secret-file")
    if tls_key and not tls_cert:
        raise PeerError("--tls-key needs --tls-cert (the client certificate, PEM)")
    path = Path(token_file).expanduser().resolve() if auth != "none" else None
    if path is not None and not path.is_file():
        raise PeerError(f"no secret file at {path}: save the token (or password, or key) "
                        "the peer issued ('shieldwall member add' on its side) in a file")
    files = {k: _existing(k, v) for k, v in
             (("tls_cert", tls_cert), ("tls_key", tls_key), ("tls_ca", tls_ca)) if v}
    peer = PeerConfig(name=name, url=url.rstrip("/"), token_file=str(path or ""), tier=tier,
                      pull=list(pull) if pull else list(DEFAULT_PULL), push=list(push or []),
                      relay_for=list(dict.fromkeys(relay_for or [])), auth=auth,
                      user=user if auth == "basic" else None,
                      api_key_header=api_key_header if auth == "api-key" else None, **files)
    others = [p for p in cfg.peers if p.name != name]
    if len(others) != len(cfg.peers) and not replace:
        raise PeerError(f"peer {name!r} already exists; use --replace to change it")
    cfg.peers = [*others, peer]
    cfg.save()
    return peer


def _existing(option: str, value: str | Path) -> str:
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise PeerError(f"--{option.replace('_', '-')}: no file at {path}")
    return str(path)


def remove_peer(cfg: NodeConfig, name: str) -> None:
    others = [p for p in cfg.peers if p.name != name]
    if len(others) == len(cfg.peers):
        raise PeerError(f"no peer named {name!r}; see 'shieldwall peer list'")
    cfg.peers = others
    cfg.save()


def credentials(peer: PeerConfig) -> Credentials:
    """How this node authenticates to `peer`, its secret read from its file now (a
    rotated secret is picked up without a restart)."""
    return Credentials(peer.auth, read_token(peer) if peer.auth != "none" else "",
                       user=peer.user or "", header=peer.api_key_header or "",
                       cert=peer.tls_cert, key=peer.tls_key, ca=peer.tls_ca)


def read_token(peer: PeerConfig) -> str:
    try:
        token = Path(peer.token_file).read_text().strip()
    except OSError as exc:
        raise PeerError(f"peer {peer.name}: cannot read token file {peer.token_file}: "
                        f"{exc.strerror}") from None
    if not token:
        raise PeerError(f"peer {peer.name}: token file {peer.token_file} is empty")
    return token


@dataclass
class PeerState:
    """What `peer list` shows; saved in the store's kv table after every attempt."""

    last_attempt_us: int = 0
    last_success_us: int = 0
    last_error: str = ""
    last_error_us: int = 0
    pulled: int = 0
    pushed: int = 0
    refused: int = 0  # of ours, by the peer
    last_refusal: str = ""
    rejected: int = 0  # of the peer's, by this node (rules.Arrival): never stored
    last_rejection: str = ""
    cursor_note: str = ""  # the last cursor the peer refused (dropped, pull recovered)
    cursor_note_us: int = 0


def load_state(store: Store, peer: str) -> PeerState:
    text = store.kv_get(STATE_KEY + peer)
    if not text:
        return PeerState()
    data = orjson.loads(text)
    return PeerState(**{k: v for k, v in data.items() if k in PeerState.__dataclass_fields__})


def save_state(store: Store, peer: str, state: PeerState) -> None:
    store.kv_set(STATE_KEY + peer, orjson.dumps(asdict(state)).decode())
