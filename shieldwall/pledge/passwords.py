"""The password audit: every account rated, no password or hash in what comes out.

A report carries account names, reason codes with fixed wording, and counts. It never
carries a password, a hash, a fragment of either, or a rank in the common-password list
(rank 1 of a public list *is* the password). Reuse is shown as groups of account names.

Fast unsalted hashes (NTLM, SHA-1) and plaintext candidates are looked up in the breach
corpus by prefix bucket. Salted hashes cannot be looked up, only tried: the audit tries
the most common passwords, rank by rank across all accounts so every account reaches the
same depth, until the time budget runs out, and says which depth it reached.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shieldwall.pledge.corpus import BreachCorpus, ntlm, sha1
from shieldwall.pledge.credentials import EMPTY_NT, Credential

SLOW_KINDS = ("bcrypt", "sha512crypt", "sha256crypt", "md5crypt", "ssha")
UNTESTABLE = ("yescrypt", "gost-yescrypt", "scrypt", "argon2", "sha1crypt", "unknown")

REASONS = {
    "breached": "password is in the breach corpus",
    "common": "password is among the most common passwords (found by trying them)",
    "empty": "empty password",
    "weak": "weak by zxcvbn estimate",
    "short": "shorter than the policy minimum",
    "reused": "same password as other accounts",
    "lm": "LM hash stored (crackable in minutes)",
    "no-mfa": "MFA not enabled",
    "untested": "hash format cannot be tested offline",
    "budget": "not tried to the full depth within the time budget",
    "locked": "locked or no password login",
}
SEVERE = {"breached", "common", "empty", "lm", "reused"}


@dataclass
class Policy:
    min_length: int = 12
    min_zxcvbn: int = 3  # zxcvbn scores 0-4; 3 is "safely unguessable: moderate protection"
    require_mfa: bool = True


@dataclass
class Budget:
    """How far salted hashes are tried: at most `max_candidates` of the most common
    passwords, and at most `seconds` in all."""

    seconds: float = 10.0
    max_candidates: int = 1000


@dataclass
class AccountResult:
    account: str
    where: str
    kind: str
    reasons: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # numbers only: score, group size

    @property
    def severe(self) -> bool:
        return any(r in SEVERE for r in self.reasons)


@dataclass
class PasswordReport:
    corpus: str
    accounts: int = 0
    by_kind: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)
    results: list[AccountResult] = field(default_factory=list)
    reuse_groups: list[list[str]] = field(default_factory=list)
    slow: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def at_risk(self) -> int:
        return sum(1 for r in self.results if r.severe)

    def score(self) -> float:
        """Share of rated accounts with no severe finding, 0..1 (the hygiene index input)."""
        rated = sum(1 for r in self.results if "locked" not in r.reasons)
        return 1.0 if rated == 0 else 1.0 - self.at_risk / rated

    def summary(self) -> dict[str, Any]:
        """Counts only: what may be recorded and shared for the posture."""
        return {"accounts": self.accounts, "at_risk": self.at_risk,
                "counts": dict(sorted(self.counts.items())), "score": round(self.score(), 4)}

    def to_json(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            **self.summary(),
            "formats": dict(sorted(self.by_kind.items())),
            "slow_hashes": self.slow,
            "reuse_groups": self.reuse_groups,
            "accounts_with_findings": [
                {"account": r.account, "where": r.where, "format": r.kind,
                 "reasons": [REASONS[c] for c in r.reasons], "codes": r.reasons, **r.detail}
                for r in self.results if r.reasons
            ],
        }


def audit(
    credentials: Iterable[Credential],
    corpus: BreachCorpus,
    policy: Policy | None = None,
    budget: Budget | None = None,
    *,
    strength: bool = True,
) -> PasswordReport:
    policy = policy or Policy()
    budget = budget or Budget()
    report = PasswordReport(corpus=corpus.label)
    creds = list(credentials)
    report.accounts = len(creds)
    results = [AccountResult(c.account, c.where, c.kind) for c in creds]
    report.results = results
    for c in creds:
        report.by_kind[c.kind] += 1

    # Passwords known in clear by the end: plaintext candidates and cracked slow hashes.
    known: dict[int, str] = {i: c.secret for i, c in enumerate(creds)
                             if c.kind == "plaintext" and isinstance(c.secret, str)}
    known.update(_try_slow(creds, corpus, budget, results, report))

    # Corpus lookups, grouped by algorithm so each bucket is asked once.
    keys: dict[int, bytes] = {}  # reuse key: same key, same password
    wanted: dict[str, set[bytes]] = {"ntlm": set(), "sha1": set()}
    for i, c in enumerate(creds):
        if i in known:
            nt = ntlm(known[i])
            wanted["ntlm"].add(nt)
            wanted["sha1"].add(sha1(known[i]))
            keys[i] = b"ntlm" + nt
        elif c.kind in ("ntlm", "sha1") and isinstance(c.secret, bytes):
            wanted[c.kind].add(c.secret)
            keys[i] = c.kind.encode() + c.secret
    found = {alg: corpus.found(alg, ds) for alg, ds in wanted.items() if ds}

    for i, c in enumerate(creds):
        r = results[i]
        if c.kind == "locked":
            r.reasons.append("locked")
            continue
        if c.kind == "empty" or (c.kind == "ntlm" and c.secret == bytes.fromhex(EMPTY_NT)) \
                or (i in known and known[i] == ""):
            r.reasons.append("empty")
        elif i in known:
            pw = known[i]
            if "common" not in r.reasons and (
                    ntlm(pw) in found.get("ntlm", ()) or sha1(pw) in found.get("sha1", ())):
                r.reasons.append("breached")
        elif c.kind in ("ntlm", "sha1") and c.secret in found.get(c.kind, ()):
            r.reasons.append("breached")
        if c.lm_stored:
            r.reasons.append("lm")
        if c.kind in UNTESTABLE:
            r.reasons.append("untested")
            r.detail["scheme"] = c.scheme
        if i in known:
            _policy(known[i], c, policy, r, strength)
        if policy.require_mfa and c.mfa is False:
            r.reasons.append("no-mfa")

    _reuse(keys, results, report)
    for r in results:
        report.counts.update(r.reasons)
    return report


def _policy(pw: str, c: Credential, policy: Policy, r: AccountResult, strength: bool) -> None:
    if pw and len(pw) < policy.min_length:
        r.reasons.append("short")
    if strength and pw and "breached" not in r.reasons and "common" not in r.reasons:
        from zxcvbn import zxcvbn

        score = int(zxcvbn(pw[:100], user_inputs=[c.account])["score"])
        r.detail["zxcvbn_score"] = score
        if score < policy.min_zxcvbn:
            r.reasons.append("weak")


def _reuse(keys: dict[int, bytes], results: list[AccountResult],
           report: PasswordReport) -> None:
    groups: dict[bytes, list[int]] = {}
    for i, k in keys.items():
        groups.setdefault(k, []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        names = sorted({results[i].account for i in members})
        report.reuse_groups.append(names)
        for i in members:
            results[i].reasons.append("reused")
            results[i].detail["reuse_group_size"] = len(members)
    report.reuse_groups.sort(key=lambda g: (-len(g), g))


def _try_slow(creds: list[Credential], corpus: BreachCorpus, budget: Budget,
              results: list[AccountResult], report: PasswordReport) -> dict[int, str]:
    """Rank by rank: every pending account tries candidate k before any tries k+1."""
    pending: dict[str, list[int]] = {}
    for i, c in enumerate(creds):
        if c.kind in SLOW_KINDS:
            pending.setdefault(c.kind, []).append(i)
    if not pending:
        return {}
    cracked: dict[int, str] = {}
    candidates = corpus.common[: budget.max_candidates]
    deadline = time.monotonic() + budget.seconds
    depth = dict.fromkeys(pending, 0)
    out_of_time = False
    for rank, pw in enumerate(candidates, 1):
        for kind, idx in pending.items():
            for i in list(idx):
                if time.monotonic() > deadline:
                    out_of_time = True
                    break
                if _verify(kind, pw, creds[i].secret):
                    cracked[i] = pw
                    results[i].reasons.append("common")
                    idx.remove(i)
            if out_of_time:
                break
            depth[kind] = rank
        if out_of_time or not any(pending.values()):
            break
    for kind in depth:
        total = sum(1 for c in creds if c.kind == kind)
        full = depth[kind] >= len(candidates) or not pending[kind]
        # Stopping early because every account fell would date the last one found: its
        # rank in a public list is its password. Report the planned depth instead.
        tried = len(candidates) if full else depth[kind]
        report.slow[kind] = {
            "accounts": total,
            "found_common": sum(1 for i in cracked if creds[i].kind == kind),
            "tried_top": tried,
            "planned_top": len(candidates),
            "complete": full,
        }
        if not full:
            for i in pending[kind]:
                results[i].reasons.append("budget")
    return cracked


def _verify(kind: str, password: str, stored: str | bytes) -> bool:
    try:
        if kind == "bcrypt":
            import bcrypt

            pw = password.encode("utf-8")[:72]
            return bcrypt.checkpw(pw, stored.encode() if isinstance(stored, str) else stored)
        if kind == "ssha":
            assert isinstance(stored, bytes)
            digest, salt = stored[:20], stored[20:]
            return hmac.compare_digest(hashlib.sha1(password.encode() + salt).digest(), digest)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from passlib.hash import md5_crypt, sha256_crypt, sha512_crypt

        scheme = {"sha512crypt": sha512_crypt, "sha256crypt": sha256_crypt,
                  "md5crypt": md5_crypt}[kind]
        return bool(scheme.verify(password, stored))
    except (ValueError, TypeError):  # a malformed hash of a known scheme: never matches
        return False
