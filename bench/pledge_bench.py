"""Pledge benchmark: password audit of 1,000,000 accounts against a 10,000,000-entry breach
corpus, and mail triage on the committed real corpus.

    .venv/bin/python bench/pledge_bench.py                  # full sizes, 3 runs, medians
    .venv/bin/python bench/pledge_bench.py --accounts 100000 --corpus 1000000 --runs 1

The corpus is generated deterministically bucket by bucket (random NTLM-sized digests,
already in sorted order, plus the NTLM digests of the 1,000 most common passwords), so the
index is built by the same one-pass `add_sorted` a Pwned Passwords download goes through.
Accounts: a secretsdump file; 10% use a common password, 20% share a password with others.
"""

from __future__ import annotations

import argparse
import heapq
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shieldwall.pledge.corpus import (  # noqa: E402
    BUCKETS,
    BreachCorpus,
    PrefixIndex,
    common_passwords,
    ntlm,
)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus_digests(n: int, planted: list[bytes], seed: int = 8) -> Iterator[bytes]:
    """n digests in sorted order without sorting n items: each bucket's share, sorted."""
    rng = random.Random(seed)
    per, extra = divmod(n - len(planted), BUCKETS)
    plant = sorted(planted)
    gen = (
        d
        for p in range(BUCKETS)
        for d in sorted(((p << 108) | rng.getrandbits(108)).to_bytes(16, "big")
                        for _ in range(per + (1 if p < extra else 0)))
    )
    return heapq.merge(gen, plant)


def accounts_file(path: Path, n: int, common: list[str], seed: int = 9) -> None:
    rng = random.Random(seed)
    common_nt = [ntlm(w).hex() for w in common[:1000]]
    shared = [rng.getrandbits(128).to_bytes(16, "big").hex() for _ in range(n // 50)]
    with path.open("w") as fh:
        for i in range(n):
            r = rng.random()
            if r < 0.10:
                nt = rng.choice(common_nt)
            elif r < 0.30:
                nt = rng.choice(shared)
            else:
                nt = rng.getrandbits(128).to_bytes(16, "big").hex()
            fh.write(f"CORP\\user{i}:{1000 + i}:aad3b435b51404eeaad3b435b51404ee:{nt}:::\n")


def bench_passwords(n_accounts: int, n_corpus: int, runs: int) -> dict[str, float]:
    from shieldwall.pledge.credentials import read_credentials
    from shieldwall.pledge.passwords import audit

    common = common_passwords()
    t0 = time.perf_counter()
    index = PrefixIndex()
    index.add_sorted("ntlm", corpus_digests(n_corpus, [ntlm(w) for w in common[:1000]]))
    build = time.perf_counter() - t0
    corpus = BreachCorpus(index, common, f"synthetic {n_corpus:,}")
    rss_corpus = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "ntds.txt"
        accounts_file(f, n_accounts, common)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rep = audit(read_credentials(f), corpus)
            times.append(time.perf_counter() - t0)
            assert rep.accounts == n_accounts
            breached = rep.counts["breached"]
    med = statistics.median(times)
    return {"corpus_entries": index.sizes["ntlm"], "corpus_build_s": round(build, 1),
            "rss_after_corpus_mb": round(rss_corpus), "audit_median_s": round(med, 1),
            "accounts_per_s": round(n_accounts / med), "peak_rss_mb": round(rss_mb()),
            "breached": breached}


def bench_mail(runs: int, repeat: int) -> dict[str, float]:
    from shieldwall.pledge.mail import iter_messages, lookalikes, triage_file

    files = list(iter_messages(ROOT / "tests" / "data" / "mail"))
    t0 = time.perf_counter()
    lookalikes("aquillaindustries.com")
    warm = time.perf_counter() - t0
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(repeat):
            for p in files:
                triage_file(p, ["aquillaindustries.com"])
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"messages": len(files) * repeat, "lookalike_table_build_s": round(warm, 1),
            "messages_per_s": round(len(files) * repeat / med)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--corpus", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mail-repeat", type=int, default=20)
    a = ap.parse_args()
    print("mail:", bench_mail(a.runs, a.mail_repeat), flush=True)
    print("passwords:", bench_passwords(a.accounts, a.corpus, a.runs), flush=True)


if __name__ == "__main__":
    main()
