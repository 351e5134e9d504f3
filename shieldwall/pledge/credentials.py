"""Readers for credential exports: what directories and hosts actually hand an auditor.

Every reader yields `Credential`s whose `secret` never leaves this package: the audit
compares it and forgets it, and nothing a report renders is taken from it.

Accepted, detected line by line unless the file is CSV with a header:

- secretsdump / pwdump: `DOMAIN\\user:1104:aad3b4...:31d6cf...::: (status=Enabled)`
- `/etc/shadow`: `user:$6$salt$hash:19000:0:99999:7:::` (also `!`, `*`, `$y$`, `$2b$`)
- `user:HASH` pairs: 32 hex digits NTLM, 40 SHA-1, `{SHA}`/`{SSHA}` (LDAP), `$2b$` bcrypt
- CSV with a header naming the account (`account`, `user`, `username`, `samaccountname`,
  `userprincipalname`, `login`, `email`) and one of `password` (plaintext candidates),
  `nthash`/`ntlm`/`hash`/`sha1`; an `mfa` column (`mfa`, `mfa_enabled`, `2fa`) if the
  export has one.
- `user:password` plaintext pairs when the caller says the file is plaintext.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shieldwall.errors import ShieldwallError

# Longest line a reader accepts; a credential export never needs more, a hostile file might.
MAX_LINE = 64 * 1024

EMPTY_LM = "aad3b435b51404eeaad3b435b51404ee"
EMPTY_NT = "31d6cfe0d16ae931b73c59d7e0c089c0"


class CredentialFileError(ShieldwallError):
    """A credential export that cannot be read at all."""


@dataclass
class Credential:
    account: str
    where: str
    kind: str  # plaintext, ntlm, sha1, ssha, bcrypt, sha512crypt, ..., locked, unknown
    secret: str | bytes = ""
    mfa: bool | None = None
    lm_stored: bool = False
    scheme: str = ""  # what an unknown or untestable hash looked like, e.g. "$y$"


_SECRETSDUMP = re.compile(
    r"^(?P<user>[^:]+):(?P<rid>\d+):(?P<lm>[0-9a-fA-F]{32}):(?P<nt>[0-9a-fA-F]{32}):::"
)
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_HEX40 = re.compile(r"^[0-9a-fA-F]{40}$")
_CRYPT = re.compile(r"^\$(?P<id>[0-9a-z]+)\$")

# crypt(3) prefixes: what they are and whether the audit can try candidates against them.
CRYPT_SCHEMES = {
    "1": "md5crypt", "5": "sha256crypt", "6": "sha512crypt",
    "2a": "bcrypt", "2b": "bcrypt", "2y": "bcrypt", "2x": "bcrypt",
    "y": "yescrypt", "gy": "gost-yescrypt", "7": "scrypt", "sha1": "sha1crypt",
}

_ACCOUNT_COLS = ("account", "user", "username", "samaccountname", "userprincipalname",
                 "login", "email", "name")
_PLAIN_COLS = ("password", "plaintext", "candidate")
_HASH_COLS = ("nthash", "ntlm", "nt_hash", "sha1", "hash", "password_hash", "userpassword")
_MFA_COLS = ("mfa", "mfa_enabled", "2fa", "mfaenabled", "strongauth")


def classify_hash(text: str) -> tuple[str, str | bytes, str]:
    """(kind, comparable secret, scheme shown in reports) for one hash field."""
    t = text.strip()
    if _HEX32.match(t):
        return "ntlm", bytes.fromhex(t), "NTLM"
    if _HEX40.match(t):
        return "sha1", bytes.fromhex(t), "SHA-1"
    upper = t[:7].upper()
    if upper.startswith("{SHA}"):
        raw = _b64(t[5:])
        if raw is not None and len(raw) == 20:
            return "sha1", raw, "{SHA}"
    if upper.startswith("{SSHA}"):
        raw = _b64(t[6:])
        if raw is not None and len(raw) > 20:
            return "ssha", raw, "{SSHA}"
    m = _CRYPT.match(t)
    if m:
        scheme = CRYPT_SCHEMES.get(m.group("id"))
        if scheme:
            return scheme, t, "$" + m.group("id") + "$"
        return "unknown", t, "$" + m.group("id")[:8] + "$"
    if t.startswith("$argon2"):
        return "argon2", t, "$argon2$"
    return "unknown", t, _shape(t)


def _shape(t: str) -> str:
    """An unrecognised field is described, never measured: its length could be the length
    of a plaintext password someone stored in a hash column."""
    return "unrecognised"


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _truthy(value: str | None) -> bool | None:
    if value is None or not value.strip():
        return None
    v = value.strip().lower()
    if v in ("1", "true", "yes", "y", "enabled", "enforced", "on"):
        return True
    if v in ("0", "false", "no", "n", "disabled", "off", "none"):
        return False
    return None


def read_credentials(path: Path, *, plaintext: bool = False) -> Iterator[Credential]:
    """Stream credentials from an export; unreadable lines become `unknown` credentials
    only when they name an account, never a crash."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CredentialFileError(f"{path}: {exc.strerror or exc}") from None
    with fh:
        head = fh.read(4096)
        fh.seek(0)
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
        first = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip().lstrip("\ufeff")
        if _looks_like_csv_header(first):
            yield from _read_csv(text, plaintext)
        else:
            yield from _read_lines(text, plaintext)


def _looks_like_csv_header(line: str) -> bool:
    if "," not in line and ";" not in line and "\t" not in line:
        return False
    cols = {c.strip().strip('"').lower() for c in re.split(r"[,;\t]", line)}
    return bool(cols & set(_ACCOUNT_COLS)) and bool(cols & set(_PLAIN_COLS + _HASH_COLS))


def _read_csv(text: io.TextIOWrapper, plaintext: bool) -> Iterator[Credential]:
    sample = text.read(4096)
    text.seek(0)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(MAX_LINE)
    reader = csv.DictReader(text, dialect=dialect)
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    acct = next((fields[c] for c in _ACCOUNT_COLS if c in fields), None)
    plain = next((fields[c] for c in _PLAIN_COLS if c in fields), None)
    hashed = next((fields[c] for c in _HASH_COLS if c in fields), None)
    mfa = next((fields[c] for c in _MFA_COLS if c in fields), None)
    try:
        for n, row in enumerate(reader, 2):
            account = (row.get(acct) or "").strip() if acct else ""
            if not account:
                continue
            where = f"line {n}"
            mfa_flag = _truthy(row.get(mfa)) if mfa else None
            if plain and (plaintext or not hashed):
                yield Credential(account, where, "plaintext", row.get(plain) or "", mfa_flag)
            elif hashed:
                kind, secret, scheme = classify_hash(row.get(hashed) or "")
                yield Credential(account, where, kind, secret, mfa_flag, scheme=scheme)
    except csv.Error as exc:
        raise CredentialFileError(f"CSV export unreadable after {reader.line_num} lines: "
                                  f"{exc}") from None


def _read_lines(text: io.TextIOWrapper, plaintext: bool) -> Iterator[Credential]:
    for n, line in enumerate(_bounded_lines(text), 1):
        line = line.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"line {n}"
        if plaintext:
            account, sep, secret = line.partition(":")
            if sep:
                yield Credential(account.strip(), where, "plaintext", secret)
            continue
        m = _SECRETSDUMP.match(line)
        if m:
            user = m.group("user")
            lm = m.group("lm").lower()
            yield Credential(user, where, "ntlm", bytes.fromhex(m.group("nt")),
                             lm_stored=lm != EMPTY_LM, scheme="NTLM")
            continue
        parts = line.split(":")
        if len(parts) < 2 or not parts[0].strip():
            continue  # no account named: nothing to report against
        account, field = parts[0].strip(), parts[1]
        if len(parts) >= 7:  # shadow(5): nine fields, the second the hash
            yield _shadow(account, where, field)
            continue
        kind, secret, scheme = classify_hash(field)
        yield Credential(account, where, kind, secret, scheme=scheme)


def _shadow(account: str, where: str, field: str) -> Credential:
    if field == "":
        return Credential(account, where, "empty", "", scheme="shadow")
    if field.startswith("!") or field.startswith("*"):
        return Credential(account, where, "locked", "", scheme="shadow")
    kind, secret, scheme = classify_hash(field)
    return Credential(account, where, kind, secret, scheme=scheme)


def _bounded_lines(text: io.TextIOWrapper) -> Iterator[str]:
    """Lines, with any line longer than MAX_LINE cut: a hostile one-line gigabyte stays
    a bounded read."""
    while True:
        line = text.readline(MAX_LINE)
        if not line:
            return
        if len(line) == MAX_LINE and not line.endswith("\n"):
            while True:  # discard the rest of an overlong line
                rest = text.readline(MAX_LINE)
                if not rest or rest.endswith("\n"):
                    break
        yield line
