"""The password audit on real common-password lists, read as an attacker reads a report."""

from __future__ import annotations

import hashlib
import re
import tracemalloc
from pathlib import Path

import bcrypt
import orjson
import pytest
from passlib.hash import md5_crypt, sha512_crypt

from shieldwall.pledge.corpus import (
    BreachCorpus,
    CorpusError,
    PrefixIndex,
    common_passwords,
    ntlm,
    prefix_of,
)
from shieldwall.pledge.credentials import read_credentials
from shieldwall.pledge.passwords import Budget, audit

from .conftest import run

STRONG = "Vq7#rT!x9Lm@2pWz"  # not in any list; zxcvbn scores it 4


def test_zxcvbn_list_is_the_real_one() -> None:
    words = common_passwords()
    assert len(words) == 30_000
    assert words[:4] == ["123456", "password", "12345678", "qwerty"]


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_secretsdump_breached_reused_empty_lm(tmp_path: Path, corpus: BreachCorpus) -> None:
    dump = _write(tmp_path, "ntds.txt", "\n".join([
        f"CORP\\alice:1104:aad3b435b51404eeaad3b435b51404ee:{ntlm('dragon').hex()}:::",
        f"CORP\\bob:1105:aad3b435b51404eeaad3b435b51404ee:{ntlm('dragon').hex()}::: "
        "(status=Enabled)",
        f"CORP\\carol:1106:e52cac67419a9a224a3b108f3fa6cb6d:{ntlm(STRONG).hex()}:::",
        "CORP\\guest:501:aad3b435b51404eeaad3b435b51404ee:31d6cfe0d16ae931b73c59d7e0c089c0:::",
        f"CORP\\dan:1107:aad3b435b51404eeaad3b435b51404ee:{ntlm('trustno1').hex()}:::",
    ]) + "\n")
    rep = audit(read_credentials(dump), corpus)
    by = {r.account: r.reasons for r in rep.results}
    assert by == {
        "CORP\\alice": ["breached", "reused"],
        "CORP\\bob": ["breached", "reused"],
        "CORP\\carol": ["lm"],
        "CORP\\guest": ["empty"],
        "CORP\\dan": ["breached"],
    }
    assert rep.reuse_groups == [["CORP\\alice", "CORP\\bob"]]
    assert rep.at_risk == 5


def test_sha1_and_ldap_and_csv_with_mfa(tmp_path: Path, corpus: BreachCorpus) -> None:
    import base64

    sha = hashlib.sha1(b"sunshine").digest()
    salt = b"NaCl4567"
    ssha = base64.b64encode(hashlib.sha1(b"letmein" + salt).digest() + salt).decode()
    lines = _write(tmp_path, "ldap.txt", "\n".join([
        f"erin:{sha.hex().upper()}",
        "frank:{SHA}" + base64.b64encode(sha).decode(),
        "gina:{SSHA}" + ssha,
        f"hank:{hashlib.sha1(STRONG.encode()).hexdigest()}",
    ]))
    rep = audit(read_credentials(lines), corpus)
    by = {r.account: r.reasons for r in rep.results}
    assert by["erin"] == ["breached", "reused"] and by["frank"] == ["breached", "reused"]
    assert by["gina"][0] == "common"
    assert by["hank"] == []

    csv = _write(tmp_path, "candidates.csv",
                 "username,password,mfa_enabled\n"
                 f"ivan,{STRONG},true\n"
                 "judy,Tr0ub4dor&3,false\n"
                 "ken,monkey,yes\n"
                 f"lena,{STRONG},no\n")
    rep = audit(read_credentials(csv), corpus)
    by = {r.account: r for r in rep.results}
    assert by["ivan"].reasons == ["reused"] and by["ivan"].detail["zxcvbn_score"] == 4
    assert "no-mfa" in by["judy"].reasons and "short" in by["judy"].reasons
    assert by["ken"].reasons[:2] == ["breached", "short"]
    assert set(by["lena"].reasons) == {"no-mfa", "reused"}


def test_shadow_with_slow_and_unknown_formats(tmp_path: Path, corpus: BreachCorpus) -> None:
    shadow = _write(tmp_path, "shadow", "\n".join([
        f"root:{sha512_crypt.using(rounds=5000, salt='saltsalt').hash('shadow')}:1:0:9:7:::",
        "daemon:*:19000:0:99999:7:::",
        "nobody:!:19000:0:99999:7:::",
        f"dave:{bcrypt.hashpw(b'qwerty', bcrypt.gensalt(4)).decode()}:19000:0:99999:7:::",
        f"old:{md5_crypt.using(salt='abcd').hash(STRONG)}:19000:0:99999:7:::",
        "erin:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7:1:0:9:7:::",
        "frank:$zz$weird$thing:19000:0:99999:7:::",
        "gina:not-a-hash-at-all:19000:0:99999:7:::",
        "henry::19000:0:99999:7:::",
        "x" * 200 + ":\x00\x01\xff:1:2:3:4:::",
        ":$6$nouser:1:2:3:4:::",
    ]) + "\n")
    rep = audit(read_credentials(shadow), corpus, budget=Budget(seconds=30, max_candidates=300))
    by = {r.account: r.reasons for r in rep.results}
    assert by["root"][0] == "common" and by["dave"][0] == "common"
    assert by["daemon"] == ["locked"] and by["nobody"] == ["locked"]
    assert by["old"] == []  # md5crypt tried to the full depth, not found
    assert by["erin"] == ["untested"] and by["frank"] == ["untested"]
    assert by["gina"] == ["untested"] and by["henry"] == ["empty"]
    assert by["x" * 200] == ["untested"]
    assert rep.accounts == 10  # the line without an account is not an account
    assert rep.slow["md5crypt"] == {"accounts": 1, "found_common": 0, "tried_top": 300,
                                    "planned_top": 300, "complete": True}
    # Every account fell: the depth reported is the plan, not the rank where the last fell.
    assert rep.slow["bcrypt"]["tried_top"] == 300


def test_time_budget_is_reported(tmp_path: Path, corpus: BreachCorpus) -> None:
    h = bcrypt.hashpw(STRONG.encode(), bcrypt.gensalt(12)).decode()
    f = _write(tmp_path, "slow.txt", f"a:{h}\nb:{h}\n")
    rep = audit(read_credentials(f), corpus, budget=Budget(seconds=0.5, max_candidates=1000))
    s = rep.slow["bcrypt"]
    assert s["complete"] is False and s["tried_top"] < 1000 and s["planned_top"] == 1000
    assert all("budget" in r.reasons for r in rep.results)


class _Remote:
    """A range service stand-in: it only ever sees bucket numbers."""

    def __init__(self, index: PrefixIndex) -> None:
        self.index = index
        self.asked: list[tuple[str, object]] = []

    def range(self, algorithm: str, prefix: int) -> frozenset[bytes]:
        self.asked.append((algorithm, prefix))
        return self.index.range(algorithm, prefix)


def test_remote_range_source_sees_only_prefixes(tmp_path: Path, corpus: BreachCorpus) -> None:
    remote = _Remote(corpus.source)  # type: ignore[arg-type]
    via_remote = BreachCorpus(remote, corpus.common, "remote")
    hashes = [ntlm(w) for w in ("dragon", "monkey", STRONG, "football")]
    dump = _write(tmp_path, "d.txt", "".join(
        f"u{i}:{1000 + i}:aad3b435b51404eeaad3b435b51404ee:{h.hex()}:::\n"
        for i, h in enumerate(hashes)))
    local = audit(read_credentials(dump), corpus)
    far = audit(read_credentials(dump), via_remote)
    assert [r.reasons for r in far.results] == [r.reasons for r in local.results]
    assert [r.reasons for r in far.results] == [["breached"], ["breached"], [], ["breached"]]
    assert remote.asked and all(isinstance(p, int) and 0 <= p < 1 << 20 for _, p in remote.asked)
    assert sorted(p for _, p in remote.asked) == sorted(prefix_of(h) for h in hashes)


def test_prefix_index_refuses_unsorted_input() -> None:
    idx = PrefixIndex()
    with pytest.raises(CorpusError):
        idx.add_sorted("sha1", [b"\xff" * 20, b"\x00" * 20])


def test_hex_corpus_file_extends_the_bundled_one(tmp_path: Path, corpus: BreachCorpus) -> None:
    secret = "correct horse battery staple zebra"
    f = tmp_path / "extra.sha1.txt"
    f.write_text(hashlib.sha1(secret.encode()).hexdigest().upper() + ":42\n")
    idx = PrefixIndex()
    idx.add_hex_file("sha1", f)
    assert idx.contains("sha1", hashlib.sha1(secret.encode()).digest())
    assert not idx.contains("sha1", hashlib.sha1(b"other").digest())


def test_output_never_contains_a_password_or_hash(tmp_path: Path, cli, home: Path) -> None:
    """Grep every rendering for every secret of the input, as an attacker with the report
    and the public lists would."""
    pws = ["dragon", "sunshine", "iloveyou", STRONG, "Tr0ub4dor&3", "p@ssw0rd", "qwerty123"]
    secrets: list[str] = list(pws)
    lines = []
    for i, pw in enumerate(pws):
        nt = ntlm(pw).hex()
        secrets += [nt, nt.upper()]
        lines.append(f"ACME\\user{i}:{2000 + i}:aad3b435b51404eeaad3b435b51404ee:{nt}:::")
    dump = _write(tmp_path, "ntds.txt", "\n".join(lines) + "\n")
    shadow_lines = []
    for i, pw in enumerate(pws[:3]):
        h = sha512_crypt.using(rounds=5000).hash(pw)
        b = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()
        secrets += [h, b, h.split("$")[-1], b[-31:]]
        shadow_lines += [f"s{i}:{h}:1:0:99999:7:::", f"b{i}:{b}:1:0:99999:7:::"]
    shadow = _write(tmp_path, "shadow", "\n".join(shadow_lines) + "\n")
    plain = _write(tmp_path, "plain.csv", "account,password,mfa\n" + "".join(
        f"p{i},{pw},no\n" for i, pw in enumerate(pws)))
    outputs = [
        run(cli, "hygiene", "passwords", str(dump)),
        run(cli, "hygiene", "passwords", str(dump), "--json"),
        run(cli, "hygiene", "passwords", str(shadow), "--budget", "20", "--top", "100"),
        run(cli, "hygiene", "passwords", str(shadow), "--json", "--budget", "20", "--top", "100"),
        run(cli, "hygiene", "passwords", str(plain)),
        run(cli, "hygiene", "passwords", str(plain), "--json", "--record", "--home", str(home)),
    ]
    report = orjson.loads(outputs[3])
    assert report["slow_hashes"]["sha512crypt"]["found_common"] == 3
    for text in outputs:
        flat = re.sub(r"\s+", "", text)
        for s in secrets:
            assert s not in text and s.replace(" ", "") not in flat, "secret leaked"
        for s in secrets:  # no 12-character window of any hash either
            if len(s) >= 32:
                for k in range(0, len(s) - 12):
                    assert s[k:k + 12] not in flat


def test_hostile_export_bounded_memory(tmp_path: Path, corpus: BreachCorpus) -> None:
    f = tmp_path / "hostile.txt"
    with f.open("wb") as fh:
        fh.write(b"a:" + b"A" * (40 * 1024 * 1024) + b"\n")  # one 40 MB line
        fh.write(b"\xff\xfe\x00garbage\n" * 1000)
        fh.write(f"ok:{ntlm('dragon').hex()}\n".encode())
    tracemalloc.start()
    rep = audit(read_credentials(f), corpus)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    by = {r.account: r.reasons for r in rep.results}
    assert by["a"] == ["untested"] and by["ok"] == ["breached"]


def test_missing_file_is_a_user_error(cli) -> None:
    from shieldwall.cli.main import app

    res = cli.invoke(app, ["hygiene", "passwords", "/nonexistent/x"])
    assert res.exit_code != 0
