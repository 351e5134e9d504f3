"""Members and their API tokens, kept in the node's database.

Tokens are 256 random bits (`secrets.token_urlsafe(32)`) and are stored only as their
SHA-256. A slow KDF (scrypt, PBKDF2) exists to make guessing *low-entropy passwords*
from a stolen hash expensive; against 2^256 possibilities one hash per guess is already
out of reach, so a KDF would add nothing but ~50 ms of CPU to every TAXII request (a
client paging a collection sends hundreds). An unsalted digest also lets the server
find a token's member with one indexed lookup, and the lookup compares digests, not
secrets, so its timing reveals nothing useful.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import Connection, Engine, delete, select, update

from shieldwall.errors import ShieldwallError
from shieldwall.policy.model import TIERS, Collection, Member
from shieldwall.policy.tables import collections, group_members, members
from shieldwall.stix.timestamps import now_us

TOKEN_PREFIX = "swt_"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class PolicyError(ShieldwallError):
    """A member or collection operation that cannot proceed; the message says why."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise PolicyError(
            f"invalid member name {name!r}: letters, digits, '.', '_' or '-', at most 100"
        )
    return name


class Members:
    """The member registry of one node (any SQLAlchemy engine with migration 0002)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _write(self) -> Connection:
        # The store's engine turns this option into `BEGIN IMMEDIATE` on SQLite.
        return self.engine.connect().execution_options(shieldwall_write=True)

    # ---- administration ----------------------------------------------------------------

    def add(self, name: str, tier: str) -> str:
        """Register a member; returns its first token (shown once, never stored)."""
        _check_name(name)
        if tier not in TIERS:
            raise PolicyError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
        token = new_token()
        now = now_us()
        with self._write() as conn, conn.begin():
            if conn.execute(select(members.c.name).where(members.c.name == name)).first():
                raise PolicyError(f"member {name!r} already exists; use 'member rotate' "
                                  "for a new token")
            conn.execute(members.insert().values(
                name=name, tier=tier, token_hash=token_hash(token), created_us=now,
                rotated_us=now, revoked_us=None,
            ))
        return token

    def rotate(self, name: str) -> str:
        """A new token for a member; the old one stops working at once (also un-revokes)."""
        token = new_token()
        with self._write() as conn, conn.begin():
            done = conn.execute(
                update(members).where(members.c.name == name).values(
                    token_hash=token_hash(token), rotated_us=now_us(), revoked_us=None)
            ).rowcount
        if not done:
            raise PolicyError(f"no member named {name!r}; see 'shieldwall member list'")
        return token

    def revoke(self, name: str) -> None:
        # The stored digest is replaced by one of a token nobody ever saw.
        with self._write() as conn, conn.begin():
            done = conn.execute(
                update(members).where(members.c.name == name).values(
                    token_hash=token_hash(new_token()), revoked_us=now_us())
            ).rowcount
        if not done:
            raise PolicyError(f"no member named {name!r}; see 'shieldwall member list'")

    def join(self, name: str, group: str) -> None:
        _check_name(group)
        self.get(name, required=True)
        with self._write() as conn, conn.begin():
            conn.execute(delete(group_members).where(
                group_members.c.group_name == group, group_members.c.member == name))
            conn.execute(group_members.insert().values(group_name=group, member=name))

    def leave(self, name: str, group: str) -> None:
        with self._write() as conn, conn.begin():
            conn.execute(delete(group_members).where(
                group_members.c.group_name == group, group_members.c.member == name))

    def list(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(members.c.name, members.c.tier, members.c.created_us,
                       members.c.rotated_us, members.c.revoked_us).order_by(members.c.name)
            ).all()
            groups = self._groups(conn)
        return [
            {"name": r[0], "tier": r[1], "created_us": r[2], "rotated_us": r[3],
             "revoked": r[4] is not None, "groups": sorted(groups.get(r[0], ()))}
            for r in rows
        ]

    def names(self) -> frozenset[str]:
        with self.engine.connect() as conn:
            return frozenset(conn.execute(select(members.c.name)).scalars())

    # ---- lookups -----------------------------------------------------------------------

    def get(self, name: str, *, required: bool = False) -> Member | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(members.c.tier).where(members.c.name == name,
                                             members.c.revoked_us.is_(None))
            ).first()
            if row is None:
                if required:
                    raise PolicyError(f"no active member named {name!r}")
                return None
            groups = conn.execute(
                select(group_members.c.group_name).where(group_members.c.member == name)
            ).scalars().all()
        return Member(name, row[0], frozenset(groups))

    def authenticate(self, token: str, name: str | None = None) -> Member | None:
        """The active member holding `token` (and called `name`, for HTTP Basic)."""
        digest = token_hash(token)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(members.c.name, members.c.tier, members.c.token_hash).where(
                    members.c.token_hash == digest, members.c.revoked_us.is_(None))
            ).first()
            if row is None or not hmac.compare_digest(row[2], digest):
                return None
            if name is not None and name != row[0]:
                return None
            groups = conn.execute(
                select(group_members.c.group_name).where(group_members.c.member == row[0])
            ).scalars().all()
        return Member(row[0], row[1], frozenset(groups))

    @staticmethod
    def _groups(conn: Connection) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for g, m in conn.execute(select(group_members.c.group_name, group_members.c.member)):
            out.setdefault(m, set()).add(g)
        return out

    # ---- collections -------------------------------------------------------------------

    def collections(self) -> list[Collection]:
        c = collections.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.id, c.alias, c.title, c.description, c.scope, c.read_rule,
                       c.write_rule).order_by(c.position, c.alias)
            ).all()
        return [Collection(*r) for r in rows]

    def set_collection(self, coll: Collection, position: int = 100) -> None:
        """Create or replace a collection and its rules."""
        with self._write() as conn, conn.begin():
            conn.execute(delete(collections).where(collections.c.id == coll.id))
            conn.execute(collections.insert().values(
                id=coll.id, alias=coll.alias, title=coll.title, description=coll.description,
                scope=coll.scope, read_rule=coll.read_rule, write_rule=coll.write_rule,
                position=position,
            ))
