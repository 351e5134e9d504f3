"""Triage of suspicious email: what the headers claim, who it pretends to be, what it carries.

Reads a message the way an analyst would, without trusting it: at most `max_bytes` of
it, with the lenient compat32 parser (a malformed message is a finding, not a crash).
Attachments are decoded and hashed in memory and never written anywhere; zip archives
are listed and their members hashed in memory with bounded decompression, because a
zip's declared sizes are the attacker's to choose.

Indicator matching covers the alliance's single-value indicators (a hash, a URL, a
domain, an address, an IP: `[type:prop = 'v']`, alone or OR-ed); compound patterns
belong to the detection engine. A hit becomes a sighting in the member's store.
"""

from __future__ import annotations

import email
import hashlib
import html
import io
import ipaddress
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MB = 1024 * 1024


@dataclass
class MailLimits:
    """Bounds that hold whatever a message claims: read at most `max_bytes` of a file,
    decompress at most `archive_bytes` from all archives of one message, look inside at
    most `archive_members` entries, and open archives nested `archive_depth` deep."""

    max_bytes: int = 25 * MB
    archive_bytes: int = 64 * MB
    archive_members: int = 2000
    archive_depth: int = 2
    max_urls: int = 2000


# Extension -> why it is risky in mail. Sources: the attachment types mail gateways block
# by default (executables, scripts, shortcuts, disk images) and those used for phishing.
RISKY_EXT: dict[str, tuple[str, str]] = {}
_RISK_GROUPS = [
    ("high", "executable or script attachment",
     "exe scr com pif bat cmd msi msp dll cpl jar ps1 psm1 vbs vbe js jse wsf wsh hta lnk reg "
     "sct chm application gadget appx msix appref-ms xll scf inf"),
    ("high", "disk image attachment (bypasses mark-of-the-web)", "iso img vhd vhdx udf"),
    ("high", "macro-enabled Office document", "docm xlsm pptm dotm xltm xlam ppam sldm"),
    ("medium", "legacy Office or OneNote format (may carry macros or embeds)",
     "doc xls ppt rtf one"),
    ("medium", "HTML attachment (credential phishing pages travel this way)",
     "htm html shtml xhtml svg mht"),
    ("medium", "archive type not inspected", "rar 7z ace cab gz tgz bz2 xz tar arj lzh z"),
]
for _sev, _why, _exts in _RISK_GROUPS:
    for _ext in _exts.split():
        RISKY_EXT[_ext] = (_sev, _why)

_DECOY = re.compile(r"\.(pdf|docx?|xlsx?|pptx?|jpe?g|png|gif|txt|csv|rtf)\.[a-z0-9-]{2,11}$",
                    re.I)
_URL = re.compile(rb"""(?i)\bhttps?://[^\s"'<>()\[\]{}\\^`|]{1,2048}""")
_AUTH = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.I)
_NAMED_ADDR = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")

WEIGHT = {"high": 3, "medium": 1, "info": 0}


@dataclass
class Finding:
    code: str
    severity: str  # high, medium, info, hit
    text: str


@dataclass
class Attachment:
    name: str
    content_type: str
    size: int
    sha256: str = ""
    sha1: str = ""
    md5: str = ""
    inside: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def walk(self) -> Iterator[Attachment]:
        yield self
        for a in self.inside:
            yield from a.walk()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "content_type": self.content_type,
                             "size": self.size, "sha256": self.sha256}
        if self.notes:
            d["notes"] = self.notes
        if self.inside:
            d["inside"] = [a.to_json() for a in self.inside]
        return d


@dataclass
class Hit:
    indicator_id: str
    on: str  # what matched: "attachment SHA-256", "URL", "sender domain"...
    value: str  # the indicator's own value (already shared intelligence)


@dataclass
class MailResult:
    source: str
    message_id: str = ""
    subject: str = ""
    sender: str = ""
    verdict: str = "no findings"
    findings: list[Finding] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    digest: str = ""  # sha256 of the bytes read: names the message in sightings

    def add(self, code: str, severity: str, text: str) -> None:
        if not any(f.code == code and f.text == text for f in self.findings):
            self.findings.append(Finding(code, severity, text))

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "message_id": self.message_id, "subject": self.subject,
            "from": self.sender, "verdict": self.verdict,
            "reasons": [{"code": f.code, "severity": f.severity, "text": f.text}
                        for f in self.findings],
            "attachments": [a.to_json() for a in self.attachments],
            "urls": len(self.urls),
            "indicator_hits": [{"indicator": h.indicator_id, "on": h.on, "value": h.value}
                               for h in self.hits],
        }


# ---- the alliance's indicators ------------------------------------------------------

@dataclass
class IndicatorSet:
    """Single-value indicators by what they match: a set lookup per observed value."""

    hashes: dict[str, str] = field(default_factory=dict)  # lower hex -> indicator id
    urls: dict[str, str] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    ips: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(m) for m in (self.hashes, self.urls, self.domains, self.ips, self.emails))

    @classmethod
    def from_indicators(cls, objs: Iterable[dict[str, Any]]) -> IndicatorSet:
        from stix2patterns.pattern import Pattern

        s = cls()
        for obj in objs:
            pattern = obj.get("pattern")
            if obj.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
                continue
            if re.search(r"\bAND\b|FOLLOWEDBY|WITHIN|REPEATS|START\b", pattern):
                continue
            try:
                comps = Pattern(pattern).inspect().comparisons
            except Exception:
                continue
            for otype, items in comps.items():
                for path, op, raw in items:
                    for value in _literals(op, raw):
                        s._add(otype, path, value, obj["id"])
        return s

    def _add(self, otype: str, path: list[Any], value: str, ind: str) -> None:
        if otype in ("file", "artifact") and path and path[0] == "hashes":
            self.hashes.setdefault(value.lower(), ind)
        elif otype == "url" and path == ["value"]:
            self.urls.setdefault(_norm_url(value), ind)
        elif otype == "domain-name" and path == ["value"]:
            self.domains.setdefault(value.lower().rstrip("."), ind)
        elif otype in ("ipv4-addr", "ipv6-addr") and path == ["value"]:
            self.ips.setdefault(value.lower(), ind)
        elif otype == "email-addr" and path == ["value"]:
            self.emails.setdefault(value.lower(), ind)

    def domain(self, host: str) -> tuple[str, str] | None:
        """An exact or parent-domain match: `evil.example` catches `www.evil.example`."""
        labels = host.lower().rstrip(".").split(".")
        for i in range(len(labels) - 1):
            d = ".".join(labels[i:])
            if d in self.domains:
                return d, self.domains[d]
        return None


def _literals(op: str, raw: str) -> list[str]:
    if op == "=":
        return [_unquote(raw)]
    if op == "IN":
        return [_unquote(x) for x in re.findall(r"'(?:[^'\\]|\\.)*'", raw)]
    return []


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("'") and raw.endswith("'"):
        raw = raw[1:-1]
    return raw.replace("\\'", "'").replace("\\\\", "\\")


def _norm_url(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower()
    netloc = host + (f":{parts.port}" if _port(parts) else "")
    path = parts.path or "/"
    return f"{parts.scheme.lower()}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


def _port(parts: Any) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def indicators_from_store(store: Any) -> IndicatorSet:
    from shieldwall.stix.timestamps import now_us, parse_ts
    from shieldwall.store import Query

    now = now_us()

    def active() -> Iterator[dict[str, Any]]:
        for row in store.iter_query(Query(types=["indicator"], include_revoked=False)):
            obj = row.obj()
            vu = obj.get("valid_until")
            try:
                if vu and parse_ts(vu) < now:
                    continue
            except ValueError:
                pass
            yield obj

    return IndicatorSet.from_indicators(active())


# ---- lookalike domains ---------------------------------------------------------------

@lru_cache(maxsize=64)
def lookalikes(own: str) -> dict[str, str]:
    """Every permutation dnstwist's engine makes of `own` (homoglyphs, typos, bit flips,
    ...), mapped to the fuzzer that made it. No DNS is asked: generation only."""
    import dnstwist

    fz = dnstwist.Fuzzer(own.lower())
    fz.generate()
    return {d["domain"]: d["fuzzer"] for d in fz.domains if d["fuzzer"] != "*original"}


def _idna(domain: str) -> str:
    d = domain.strip().strip(".").lower()
    try:
        return d.encode("idna").decode("ascii")
    except UnicodeError:
        return d


def _lookalike_of(domain: str, own_domains: Iterable[str]) -> tuple[str, str] | None:
    d = _idna(domain)
    for own in own_domains:
        o = _idna(own)
        if d == o or d.endswith("." + o):
            return None
        fuzzer = lookalikes(o).get(d)
        if fuzzer is None:  # a subdomain of a lookalike, e.g. login.examp1e.gov
            parts = d.split(".")
            for i in range(1, len(parts) - 1):
                fuzzer = lookalikes(o).get(".".join(parts[i:]))
                if fuzzer:
                    break
        if fuzzer:
            return o, fuzzer
    return None


# ---- reading a message ---------------------------------------------------------------

def _header(msg: Message, name: str) -> str:
    """Decoded header text; undecodable words kept as received."""
    raw = msg.get(name)
    if raw is None:
        return ""
    try:
        return str(make_header(decode_header(str(raw))))
    except Exception:
        return str(raw)


_ANGLE = re.compile(r"^(?P<name>.*)<(?P<addr>[^<>]*@[^<>]*)>\s*$", re.S)


def _addr(value: str) -> tuple[str, str]:
    """(display name, address). The address in angle brackets wins: in
    `ceo@example.org <x@evil.example>` the first one is only a display name."""
    m = _ANGLE.match(value.strip())
    if m:
        return m.group("name").strip().strip('"'), m.group("addr").strip().lower()
    try:
        pairs = getaddresses([value])
    except Exception:
        return "", ""
    for name, addr in pairs:
        if "@" in addr:
            return name, addr.lower()
    return "", ""


def _domain_of(addr: str) -> str:
    return addr.rsplit("@", 1)[1].strip(" >.").lower() if "@" in addr else ""


def _org(domain: str) -> str:
    """Roughly the organisational domain (last two labels, three under a two-letter ccTLD
    second level like co.uk); enough to tell mail.example.org from example.org apart."""
    labels = domain.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in ("co", "com", "gov", "org",
                                                                      "ac", "net", "or", "go"):
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def read_limited(path: Path, max_bytes: int) -> tuple[bytes, bool]:
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    return data[:max_bytes], len(data) > max_bytes


def triage_file(path: Path, own_domains: Iterable[str] = (),
                indicators: IndicatorSet | None = None,
                limits: MailLimits | None = None) -> MailResult:
    limits = limits or MailLimits()
    data, truncated = read_limited(path, limits.max_bytes)
    result = triage_bytes(data, own_domains, indicators, limits, source=str(path))
    if truncated:
        result.add("oversized", "medium",
                   f"message larger than {limits.max_bytes // MB} MB: only the first "
                   f"{limits.max_bytes // MB} MB were read")
        _verdict(result)
    return result


def triage_bytes(data: bytes, own_domains: Iterable[str] = (),
                 indicators: IndicatorSet | None = None, limits: MailLimits | None = None,
                 source: str = "<bytes>") -> MailResult:
    limits = limits or MailLimits()
    own = [d for d in own_domains if d]
    ind = indicators or IndicatorSet()
    r = MailResult(source=source, digest=hashlib.sha256(data).hexdigest())
    try:
        msg = email.message_from_bytes(data)  # compat32: the most forgiving parser
    except Exception as exc:
        r.add("unparseable", "medium", f"message could not be parsed ({type(exc).__name__})")
        _verdict(r)
        return r
    if not msg.keys():
        r.add("no-headers", "medium", "no headers found: not an RFC 5322 message")
    if msg.defects:
        r.add("malformed", "info", "malformed MIME: " + ", ".join(
            sorted({type(d).__name__ for d in msg.defects}))[:200])
    r.message_id = _header(msg, "Message-ID").strip()[:300]
    r.subject = _header(msg, "Subject").strip()[:300]
    _authentication(msg, r)
    _addresses(msg, r, own, ind)
    budget = [limits.archive_bytes]
    for part in _parts(msg, r):
        _part(part, r, own, ind, limits, budget)
    _verdict(r)
    return r


def _authentication(msg: Message, r: MailResult) -> None:
    """The topmost Authentication-Results is the one the member's own gateway added;
    lower ones were written by hops the sender may control."""
    ar = msg.get_all("Authentication-Results") or []
    results: dict[str, str] = {}
    if ar:
        for mech, res in _AUTH.findall(str(ar[0])):
            results.setdefault(mech.lower(), res.lower())
    spf = msg.get("Received-SPF")
    if "spf" not in results and spf:
        results["spf"] = str(spf).strip().split(None, 1)[0].lower() if str(spf).strip() else ""
    if not results:
        r.add("no-auth", "info", "no SPF/DKIM/DMARC results recorded by the receiving gateway")
        return
    for mech in ("spf", "dkim", "dmarc"):
        res = results.get(mech)
        if res in ("fail", "permerror") or (mech == "dmarc" and res in ("quarantine", "reject")):
            sev = "high" if mech == "dmarc" else "medium"
            r.add(f"{mech}-fail", sev, f"{mech.upper()} {res}")
        elif res == "softfail":
            r.add(f"{mech}-fail", "medium", f"{mech.upper()} softfail")
        elif res in ("none", "neutral", "temperror") and mech != "dkim":
            r.add(f"{mech}-none", "info", f"{mech.upper()} {res}")


def _addresses(msg: Message, r: MailResult, own: list[str], ind: IndicatorSet) -> None:
    name, sender = _addr(_header(msg, "From"))
    r.sender = sender
    _, reply = _addr(_header(msg, "Reply-To"))
    _, ret = _addr(_header(msg, "Return-Path"))
    sd, rd = _domain_of(sender), _domain_of(reply)
    if reply and rd and sd and _org(rd) != _org(sd):
        r.add("reply-to", "medium", f"Reply-To domain {rd} differs from sender domain {sd}")
    for m in _NAMED_ADDR.finditer(name or ""):
        shown = m.group(1).lower()
        if sd and _org(shown) != _org(sd):
            r.add("display-spoof", "medium",
                  f"display name shows an address at {shown}, mail is from {sd}")
        if own and (la := _lookalike_of(shown, own)):
            r.add("lookalike", "high", f"display name uses {shown}, a {la[1]} lookalike of "
                                       f"{la[0]}")
    for label, dom in (("sender", sd), ("Reply-To", rd), ("Return-Path", _domain_of(ret))):
        if not dom:
            continue
        if own and (la := _lookalike_of(dom, own)):
            r.add("lookalike", "high", f"{label} domain {dom} is a {la[1]} lookalike of {la[0]}")
        if (hit := ind.domain(dom)) is not None:
            r.hits.append(Hit(hit[1], f"{label} domain", hit[0]))
    for label, a in (("sender", sender), ("Reply-To", reply)):
        if a and a in ind.emails:
            r.hits.append(Hit(ind.emails[a], f"{label} address", a))


def _parts(msg: Message, r: MailResult) -> Iterator[Message]:
    try:
        yield from msg.walk()
    except Exception as exc:
        r.add("malformed", "info", f"MIME tree unreadable past this point ({type(exc).__name__})")


def _part(part: Message, r: MailResult, own: list[str], ind: IndicatorSet,
          limits: MailLimits, budget: list[int]) -> None:
    if part.is_multipart():
        return
    try:
        payload = part.get_payload(decode=True) or b""
    except Exception:
        payload = b""
    ctype = (part.get_content_type() or "").lower()
    filename = _filename(part)
    disposition = str(part.get("Content-Disposition", "")).lower()
    is_attachment = bool(filename) or disposition.startswith("attachment") or not (
        ctype.startswith("text/") or ctype.startswith("multipart/") or ctype == "message/rfc822")
    if not is_attachment:
        _urls(payload, ctype, r, own, ind, limits)
        return
    att = _attachment(filename or "(unnamed)", ctype, payload, limits, budget, 0)
    r.attachments.append(att)
    for a in att.walk():
        _attachment_findings(a, r)
        for h, label in ((a.sha256, "SHA-256"), (a.sha1, "SHA-1"), (a.md5, "MD5")):
            if h and h in ind.hashes:
                r.hits.append(Hit(ind.hashes[h], f"attachment {label} ({a.name})", h))
    if ctype == "text/html" or filename.lower().endswith((".htm", ".html")):
        _urls(payload, "text/html", r, own, ind, limits)


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except Exception:
        return ""
    if isinstance(name, tuple):  # RFC 2231 triple
        name = name[2]
    # compat32 keeps raw 8-bit header bytes as surrogates; show them as UTF-8 where they are.
    name = str(name).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    try:
        return str(make_header(decode_header(str(name)))).strip()[:255]
    except Exception:
        return str(name)[:255]


def _hashes(att: Attachment, data: bytes) -> None:
    att.sha256 = hashlib.sha256(data).hexdigest()
    att.sha1 = hashlib.sha1(data).hexdigest()
    att.md5 = hashlib.md5(data).hexdigest()


def _attachment(name: str, ctype: str, data: bytes, limits: MailLimits, budget: list[int],
                depth: int) -> Attachment:
    att = Attachment(name, ctype, len(data))
    _hashes(att, data)
    if data[:2] == b"MZ":
        att.notes.append("windows-executable")
    if data and (data[:4] == b"PK\x03\x04" or name.lower().endswith(".zip")):
        _zip(att, data, limits, budget, depth)
    return att


def _zip(att: Attachment, data: bytes, limits: MailLimits, budget: list[int],
         depth: int) -> None:
    """List and hash members with decompression counted against the message's budget.

    A member is read in 64 KiB steps and abandoned as soon as the budget is spent, so a
    42 KB file that claims (or hides) petabytes costs at most `archive_bytes`.
    """
    if depth >= limits.archive_depth:
        att.notes.append("nested-too-deep")
        return
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        att.notes.append("archive-unreadable")
        return
    if len(infos) > limits.archive_members:
        att.notes.append("archive-too-many-members")
        infos = infos[: limits.archive_members]
    for info in infos:
        if info.is_dir():
            continue
        inner = Attachment(info.filename[:255], "", info.file_size)
        att.inside.append(inner)
        if info.flag_bits & 0x1:
            inner.notes.append("encrypted")
            continue
        if info.compress_size and info.file_size / max(info.compress_size, 1) > 1000 \
                and info.file_size > limits.archive_bytes:
            inner.notes.append("zip-bomb")
            continue
        buf = bytearray()
        try:
            with zf.open(info) as fh:
                while chunk := fh.read(64 * 1024):
                    budget[0] -= len(chunk)
                    if budget[0] < 0:
                        inner.notes.append("zip-bomb")
                        break
                    buf += chunk
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error, EOFError,
                OSError, ValueError):
            inner.notes.append("archive-unreadable")
            continue
        if "zip-bomb" in inner.notes:
            inner.size = -1
            return  # the budget is spent: nothing more from this message's archives
        inner.size = len(buf)
        _hashes(inner, bytes(buf))
        if buf[:2] == b"MZ":
            inner.notes.append("windows-executable")
        if buf[:4] == b"PK\x03\x04":
            _zip(inner, bytes(buf), limits, budget, depth + 1)


def _attachment_findings(a: Attachment, r: MailResult) -> None:
    low = a.name.lower()
    ext = low.rsplit(".", 1)[-1] if "." in low else ""
    if ext in RISKY_EXT:
        sev, why = RISKY_EXT[ext]
        r.add("risky-attachment", sev, f"{why}: {a.name}")
        if _DECOY.search(low) and sev == "high":
            r.add("double-extension", "high", f"decoy double extension: {a.name}")
    notes = set(a.notes)
    if "windows-executable" in notes and ext not in ("exe", "dll", "scr", "com", "cpl", "msi"):
        r.add("disguised-executable", "high", f"Windows executable content named {a.name}")
    if "encrypted" in notes:
        r.add("encrypted-archive", "high",
              f"password-protected archive member {a.name} (contents hidden from scanning)")
    if "zip-bomb" in notes:
        r.add("zip-bomb", "high", f"archive member {a.name} decompresses beyond the inspection "
                                  "bound (possible zip bomb)")
    if "archive-unreadable" in notes:
        r.add("archive-unreadable", "medium", f"archive {a.name} is corrupt or unsupported")
    if "nested-too-deep" in notes:
        r.add("nested-archive", "medium", f"archive nested too deep to inspect: {a.name}")


def _urls(payload: bytes, ctype: str, r: MailResult, own: list[str], ind: IndicatorSet,
          limits: MailLimits) -> None:
    for m in _URL.finditer(payload):
        if len(r.urls) >= limits.max_urls:
            return
        url = m.group(0).decode("utf-8", "replace")
        if ctype == "text/html":
            url = html.unescape(url)
        url = url.rstrip(".,;:!?'\"")
        if url in r.urls:
            continue
        r.urls.append(url)
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            continue
        norm = _norm_url(url)
        if norm in ind.urls:
            r.hits.append(Hit(ind.urls[norm], "URL", norm))
        if host and (hit := ind.domain(host)) is not None:
            r.hits.append(Hit(hit[1], "URL domain", hit[0]))
        if host and host in ind.ips:
            r.hits.append(Hit(ind.ips[host], "URL IP", host))
        if host and _is_ip(host):
            r.add("ip-url", "medium", f"link to a bare IP address {host}")
        if host and own and (la := _lookalike_of(host, own)):
            r.add("lookalike", "high", f"link to {host}, a {la[1]} lookalike of {la[0]}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _verdict(r: MailResult) -> None:
    if r.hits:
        uniq: dict[tuple[str, str], Hit] = {}
        for h in r.hits:
            uniq.setdefault((h.indicator_id, h.on), h)
        r.hits = list(uniq.values())
        r.verdict = "malicious"
        for h in r.hits:
            r.add("indicator", "hit", f"{h.on} matches shared indicator {h.indicator_id}")
        return
    score = sum(WEIGHT.get(f.severity, 0) for f in r.findings)
    r.verdict = "suspicious" if score >= 3 else "caution" if score >= 1 else "no findings"


def iter_messages(path: Path, limit: int | None = None) -> Iterator[Path]:
    """A file, or every regular file below a directory (hidden ones skipped), sorted."""
    if path.is_file():
        yield path
        return
    n = 0
    for p in sorted(path.rglob("*")):
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts):
            yield p
            n += 1
            if limit is not None and n >= limit:
                return


def sightings_for(results: Iterable[MailResult], member: str, tlp: Any,
                  marking_of: Callable[[str], Iterable[Any]] | None = None,
                  ) -> list[dict[str, Any]]:
    """One sighting per (indicator, message): re-running triage on the same message finds
    the same ids, so the store keeps one, not one per run.

    A sighting repeats the matched value, so `marking_of` (the store's marking of each
    indicator, `store.audience.stored_marking`) keeps it no wider than its indicator."""
    from shieldwall.stix.identity import member_identity, member_identity_id
    from shieldwall.stix.ids import deterministic_id
    from shieldwall.stix.markings import audience_property, narrowest_audience, tlp_marking_ref
    from shieldwall.stix.timestamps import format_ts, now_us

    me = member_identity_id(member)
    ts = format_ts(now_us())
    objs: list[dict[str, Any]] = []
    for r in results:
        for h in r.hits:
            level, audience = narrowest_audience(
                marking_of(h.indicator_id) if marking_of else (), tlp)
            named = audience_property(audience, member)
            objs.append({**named,
                "type": "sighting", "spec_version": "2.1",
                "id": deterministic_id("sighting",
                                       f"pledge-mail:{member}:{h.indicator_id}:{r.digest}"),
                "created": ts, "modified": ts, "first_seen": ts, "last_seen": ts, "count": 1,
                "created_by_ref": me,
                "sighting_of_ref": h.indicator_id,
                "where_sighted_refs": [me],
                "description": f"Pledge mail triage: {h.on} matched",
                "object_marking_refs": [tlp_marking_ref(level)],
                "x_shieldwall_matched": {"check": "mail", "on": h.on, "value": h.value},
            })
    if objs:
        objs.insert(0, member_identity(member))
    return objs
