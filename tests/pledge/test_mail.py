"""Mail triage on real phishing and spam (mail-parser's test corpus, attachments stripped)
and on hostile messages built here: a zip bomb, a 100 MB message, broken MIME."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from email.message import EmailMessage
from pathlib import Path

import orjson
import pytest

from shieldwall.node import Node, member_identity_id
from shieldwall.pledge.mail import (
    IndicatorSet,
    MailLimits,
    indicators_from_store,
    triage_bytes,
    triage_file,
)
from shieldwall.store import Provenance, Query
from tests.factories import indicator

from .conftest import DATA, run

MAIL = DATA / "mail"


def codes(r) -> set[str]:
    return {f.code for f in r.findings}


def test_real_phish_with_lookalike_reply_to() -> None:
    """`purchasing@aquillaindustries.com <do-not-reply@ncs.gov.ng>`, Reply-To at
    aquiIlaindustries.com: a display-name spoof with a homoglyph reply address."""
    r = triage_file(MAIL / "mail_test_15.eml", own_domains=["aquillaindustries.com"])
    assert r.sender == "do-not-reply@ncs.gov.ng"
    assert r.verdict == "suspicious"
    assert {"reply-to", "display-spoof", "lookalike"} <= codes(r)
    look = [f.text for f in r.findings if f.code == "lookalike"]
    assert look == ["Reply-To domain aquiilaindustries.com is a homoglyph lookalike of "
                    "aquillaindustries.com"]
    assert [a.name for a in r.attachments] == ["REQUEST FOR QUOTE.zip"]


def test_real_bank_phish_reply_to_and_auth_results() -> None:
    r = triage_file(MAIL / "mail_test_17.eml")
    assert r.sender.endswith("@bbva.mx")
    assert "reply-to" in codes(r) and "spf-none" in codes(r)
    assert r.verdict == "caution"


@pytest.mark.parametrize(("name", "verdict"), [
    ("mail_test_19.eml", "no findings"),      # display name is an address of the same org
    ("mail_test_16.eml", "no findings"),      # GTUBE: spam, but nothing this check judges
    ("mail_malformed_3.eml", "caution"),      # broken MIME; Reply-To at another provider
    ("mail_malformed_2.eml", "no findings"),  # bounce with a DSN attachment
    ("mail_test_8.eml", "no findings"),
    ("mail_test_4.eml", "no findings"),
    ("mail_test_1.eml", "no findings"),
])
def test_real_corpus_verdicts(name: str, verdict: str) -> None:
    assert triage_file(MAIL / name).verdict == verdict


def test_malformed_mime_is_a_finding_not_a_crash() -> None:
    r = triage_file(MAIL / "mail_malformed_3.eml")
    assert "malformed" in codes(r)
    for raw in [b"", b"\x00\xff" * 1000, b"From: <<<@@@>>>\r\nSubject: =?utf-8?B?!!!?=\r\n"
                b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n",
                b"Content-Type: multipart/mixed; boundary=x\n\n" + b"--x\n" * 5000]:
        r = triage_bytes(raw)
        assert r.verdict in ("no findings", "caution", "suspicious")


def _message(attachments: list[tuple[str, bytes]], frm: str = "a@example.org") -> bytes:
    m = EmailMessage()
    m["From"] = frm
    m["To"] = "soc@example.gov"
    m["Subject"] = "test"
    m.set_content("see attached http://198.51.100.9/login and https://portal.examp1e.gov/x")
    for name, data in attachments:
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return m.as_bytes()


def _zip_bomb(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("invoice.pdf", "w", force_zip64=True) as fh:
        chunk = b"\0" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            fh.write(chunk)
    return buf.getvalue()


def test_zip_bomb_attachment_bounded() -> None:
    bomb = _zip_bomb(512 * 1024 * 1024)  # 512 MB of zeros in about half a megabyte
    assert len(bomb) < 1024 * 1024
    raw = _message([("docs.zip", bomb)])
    tracemalloc.start()
    r = triage_bytes(raw, limits=MailLimits(archive_bytes=32 * 1024 * 1024))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "zip-bomb" in codes(r) and r.verdict == "suspicious"
    assert peak < 120 * 1024 * 1024


def test_zip_contents_hashed_in_memory_and_judged(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("payload.exe", b"MZ\x90\x00 not really a program")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("Invoice.pdf.js", b"WScript.Echo(1)")
        zf.writestr("nested.zip", inner.getvalue())
        zf.writestr("photo.jpg", b"MZ disguised")
    before = set(tmp_path.iterdir())
    r = triage_bytes(_message([("files.zip", outer.getvalue())]), own_domains=["example.gov"])
    assert set(tmp_path.iterdir()) == before
    names = [a.name for a in r.attachments[0].walk()]
    assert names == ["files.zip", "Invoice.pdf.js", "nested.zip", "payload.exe", "photo.jpg"]
    c = codes(r)
    assert {"risky-attachment", "double-extension", "disguised-executable", "ip-url",
            "lookalike"} <= c
    assert r.verdict == "suspicious"


def test_100mb_message_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.eml"
    with big.open("wb") as fh:
        fh.write(b"From: x@example.org\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n")
        line = b"A" * 998 + b"\r\n"
        for _ in range(100 * 1024 * 1024 // len(line)):
            fh.write(line)
    assert big.stat().st_size >= 100 * 1024 * 1024 - 1024
    tracemalloc.start()
    r = triage_file(big, limits=MailLimits(max_bytes=8 * 1024 * 1024))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "oversized" in codes(r)
    assert peak < 100 * 1024 * 1024


def test_indicator_hit_becomes_a_sighting(home: Path, cli) -> None:
    payload = b"%PDF-1.4 fake invoice"
    import hashlib

    sha = hashlib.sha256(payload).hexdigest()
    node = Node.load(home)
    hash_ind = indicator(pattern=f"[file:hashes.'SHA-256' = '{sha}']")
    url_ind = indicator(pattern="[url:value = 'http://198.51.100.9/login']")
    skipped = indicator(pattern="[domain-name:value = 'example.org' AND "
                                "ipv4-addr:value = '1.2.3.4']")
    node.store.put_many([hash_ind, url_ind, skipped], Provenance("nato-cell"))
    ind = indicators_from_store(node.store)
    assert len(ind) == 2
    node.close()
    eml = home.parent / "in.eml"
    eml.write_bytes(_message([("invoice.pdf", payload)]))
    out = run(cli, "hygiene", "mail", str(eml), "--json", "--home", str(home))
    res = orjson.loads(out[out.index("["):])
    assert res[0]["verdict"] == "malicious"
    assert {h["indicator"] for h in res[0]["indicator_hits"]} == {hash_ind["id"], url_ind["id"]}
    run(cli, "hygiene", "mail", str(eml), "--home", str(home))  # again: same sightings
    node = Node.load(home)
    rows = [r.obj() for r in node.store.iter_query(Query(types=["sighting"]))]
    node.close()
    assert len(rows) == 2
    assert {s["sighting_of_ref"] for s in rows} == {hash_ind["id"], url_ind["id"]}
    assert all(s["where_sighted_refs"] == [member_identity_id("estonia")] for s in rows)


def test_directory_and_cli_text(cli) -> None:
    out = run(cli, "hygiene", "mail", str(MAIL), "--own-domain", "aquillaindustries.com",
              "--home", "/nonexistent-node")
    assert "SUSPICIOUS" in out and "9 message(s)" in out


def test_indicator_set_ignores_compound_and_bad_patterns() -> None:
    s = IndicatorSet.from_indicators([
        {"id": "indicator--1", "pattern": "[url:value = 'http://a/']"},
        {"id": "indicator--2", "pattern": "not a pattern"},
        {"id": "indicator--3", "pattern": "[email-addr:value IN ('x@evil.example', 'y@e.x')]"},
        {"id": "indicator--4", "pattern": "[a:b = 1]", "pattern_type": "sigma"},
    ])
    assert s.urls == {"http://a/": "indicator--1"}
    assert set(s.emails) == {"x@evil.example", "y@e.x"}
