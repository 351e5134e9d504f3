"""Dashboard users and their sessions, kept in the node's database (migration 0005).

A user belongs to one member and sees exactly what TAXII shows that member. Passwords
are generated (128 random bits, shown once) and stored as scrypt hashes (n=2^14, r=8,
p=1: ~50 ms per check, which makes guessing from a stolen database slow). Sessions are
server-side: the cookie carries a random id (signed), the table its SHA-256, so logout
and removing a user end the session at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    delete,
    select,
)

from shieldwall.errors import ShieldwallError
from shieldwall.stix.timestamps import now_us

ROLES = ("analyst", "coordinator", "read-only")
SESSION_SECONDS = 12 * 3600
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

metadata = MetaData()

users = Table(
    "web_users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("member", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user", String(200), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
)


class UserError(ShieldwallError):
    """A dashboard user operation that cannot proceed; the message says why."""


@dataclass(frozen=True)
class User:
    name: str
    member: str
    role: str


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return (f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}$"
            f"{b64(salt).decode()}${b64(digest).decode()}")


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


# A valid hash of nothing anyone knows: unknown user names cost as much as wrong passwords.
_DUMMY = hash_password(secrets.token_urlsafe(16))


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class Users:
    """Dashboard users of one node (any engine migrated to 0005)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _write(self) -> Connection:
        return self.engine.connect().execution_options(shieldwall_write=True)

    def add(self, name: str, member: str, role: str, known_members: frozenset[str]) -> str:
        """Create a user; returns its generated password (shown once, never stored)."""
        if not _NAME_RE.match(name):
            raise UserError(f"invalid user name {name!r}: letters, digits, '.', '_', '@', '-'")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        if member not in known_members:
            raise UserError(f"no member named {member!r}; add it first with "
                            "'shieldwall member add'")
        password = secrets.token_urlsafe(16)
        with self._write() as conn, conn.begin():
            if conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise UserError(f"user {name!r} already exists")
            conn.execute(users.insert().values(
                name=name, member=member, role=role, password_hash=hash_password(password),
                created_us=now_us()))
        return password

    def remove(self, name: str) -> None:
        with self._write() as conn, conn.begin():
            conn.execute(delete(sessions).where(sessions.c.user == name))
            if not conn.execute(delete(users).where(users.c.name == name)).rowcount:
                raise UserError(f"no user named {name!r}")

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users.c.name, users.c.member, users.c.role)
                                .order_by(users.c.name)).all()
        return [User(*r) for r in rows]

    def verify(self, name: str, password: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.name, users.c.member, users.c.role,
                                      users.c.password_hash).where(users.c.name == name)).first()
        if row is None:
            check_password(password, _DUMMY)
            return None
        return User(row[0], row[1], row[2]) if check_password(password, row[3]) else None

    # ---- sessions ----------------------------------------------------------------------

    def start_session(self, user: User) -> tuple[str, str]:
        """A new session id (for the cookie) and its CSRF token."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = now_us()
        with self._write() as conn, conn.begin():
            conn.execute(delete(sessions).where(sessions.c.expires_us < now))
            conn.execute(sessions.insert().values(
                id_hash=_sid_hash(sid), user=user.name, csrf=csrf, created_us=now,
                expires_us=now + SESSION_SECONDS * 1_000_000))
        return sid, csrf

    def session(self, sid: str) -> Session | None:
        s, u = sessions.c, users.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(u.name, u.member, u.role, s.csrf).join_from(
                    sessions, users, s.user == u.name)
                .where(s.id_hash == _sid_hash(sid), s.expires_us > now_us())
            ).first()
        return None if row is None else Session(User(row[0], row[1], row[2]), row[3])

    def end_session(self, sid: str) -> None:
        with self._write() as conn, conn.begin():
            conn.execute(delete(sessions).where(sessions.c.id_hash == _sid_hash(sid)))


def create_user(store_or_node: Any, name: str, member: str, role: str = "analyst") -> str:
    """Create a dashboard user of `member`; returns the generated password.

    Takes a `Store` or a `Node` (anything with `.engine` or `.store.engine`). The demo
    calls this to print a user and password per member.
    """
    store = getattr(store_or_node, "store", store_or_node)
    from shieldwall.policy import Members

    return Users(store.engine).add(name, member, role, Members(store.engine).names())
