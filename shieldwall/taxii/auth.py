"""Who is calling: HTTP Basic (what taxii2-client sends) or a Bearer token.

Failed logins are counted per client address; past `max_failures` in `window`
seconds that address gets 429 without its credentials being checked, which caps an
online guessing attack at a handful of tries a minute. Each failure is logged with
the address and the user name offered, never the secret.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time

import orjson

from shieldwall.policy import Member, Members, token_hash
from shieldwall.policy.failed_logins import FailedLogins
from shieldwall.taxii.errors import TaxiiError

log = logging.getLogger("shieldwall.taxii.auth")

# How long a verified token, or a collection's rules, are trusted without asking the
# database again: a revoked token stops working within this time.
CACHE_SECONDS = 1.0

CHALLENGE = {"WWW-Authenticate": 'Basic realm="shieldwall", Bearer realm="shieldwall"'}


class RateLimit:
    """A token bucket per member: `rate` requests a second, bursts of `2 * rate` (at least 1)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 when the request may proceed, else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        burst = max(1.0, 2 * self.rate)
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1, now)
            return 0.0


class TokenCache:
    """Members by token digest, for `CACHE_SECONDS`: a paging client sends hundreds of
    requests a second and each lookup was two queries."""

    def __init__(self, members: Members) -> None:
        self.members = members
        self._seen: dict[tuple[str, str | None], tuple[float, Member]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str, name: str | None = None) -> Member | None:
        """The member verified for this token within `CACHE_SECONDS`, from memory only."""
        hit = self._seen.get((token_hash(token), name))  # a dict read is atomic
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        return None

    def authenticate(self, token: str, name: str | None = None) -> Member | None:
        member = self.cached(token, name)
        if member is not None:
            return member
        key = (token_hash(token), name)
        now = time.monotonic()
        member = self.members.authenticate(token, name)
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            if member is None:
                self._seen.pop(key, None)
            else:
                self._seen[key] = (now, member)
        return member


def _credentials(header: str) -> tuple[str | None, str] | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return None, value
    if scheme.lower() == "basic" and value:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if sep and user and password:
            return user, password
    return None


def from_cache(
    members: TokenCache, header: str | None, client: str, failures: FailedLogins
) -> Member | None:
    """The calling member when its credentials were verified moments ago, else None
    (then `authenticate` decides, off the event loop: it may ask the database).

    Lets the common request skip a worker-thread hop; an address that is blocked for
    failed logins is still refused by `authenticate`, never let through here."""
    if not header or failures.blocked(client):
        return None
    creds = _credentials(header)
    return members.cached(creds[1], creds[0]) if creds else None


def authenticate(
    members: TokenCache, header: str | None, client: str, failures: FailedLogins
) -> Member | None:
    """The calling member, None when no credentials were sent; 401/429 on bad ones."""
    if not header:
        return None
    wait = failures.blocked(client)
    if wait:
        raise TaxiiError(429, "too many failed logins from this address; try again later",
                         {"Retry-After": str(int(wait) + 1)})
    creds = _credentials(header)
    member = members.authenticate(creds[1], creds[0]) if creds else None
    if member is None:
        failures.record(client)
        log.warning(orjson.dumps({
            "event": "login_failed", "client": client,
            "user": (creds[0] if creds else None),
            "scheme": header.strip().partition(" ")[0][:20],
        }).decode())
        raise TaxiiError(401, "invalid credentials", CHALLENGE)
    return member
