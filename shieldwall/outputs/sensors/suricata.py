"""Suricata: datasets for the values one rule can look up, plain rules for the rest.

- Addresses: datasets `shieldwall-ipv4` (type ipv4) and `shieldwall-ipv6` (type ip), looked up
  on `ip.src` and `ip.dst`.
- Domain names: dataset `shieldwall-domains` (type string, base64 lines as Suricata requires
  for string sets) on `dns.query`, `tls.sni` and `http.host`, each lower-cased first.
- Certificate SHA-1: dataset `shieldwall-tls-fingerprints` (string) on
  `tls.cert_fingerprint` (`aa:bb:...`, Suricata's spelling).
- File hashes: Suricata's hash lists (`filemd5`, `filesha1`, `filesha256`): they hash the
  whole file; a dataset of type md5/sha256 hashes a buffer, which is not what a file hash
  indicator means.
- One rule per indicator (sid kept in the store, `sids`): networks (`ip CIDR any <> any any`),
  domain suffixes (`dns.query; content:".example.org"; endswith`), http URLs (host and raw
  URI, each exact with `bsize`), and flows (an AND of network-traffic addresses, ports and
  protocol, `flow:to_server` since STIX's src is the initiator).

Every rule carries `metadata:shieldwall_id <STIX id>, tlp <level>` (dataset rules: `shieldwall_set
<name>`), so an alert maps back. Content bytes outside a small safe set are written as
`|hex|`, so no value can close a content, an option or a rule; names go into `msg` made
plain (`text.plain`). Not exported (with the reason): email addresses (no envelope keyword in
Suricata 7), https URLs (the path is encrypted), and whatever `forms` refuses.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import urlsplit

from shieldwall.outputs.sensors import forms as f
from shieldwall.outputs.sensors.active import Entry
from shieldwall.outputs.sensors.sids import SidBook, fingerprint

RULES = "shieldwall.rules"
SETS = {"ipv4": "shieldwall-ipv4.lst", "ipv6": "shieldwall-ipv6.lst",
        "domains": "shieldwall-domains.lst", "tls": "shieldwall-tls-fingerprints.lst"}
HASH_LISTS = {f.MD5: "shieldwall-md5.txt", f.SHA1: "shieldwall-sha1.txt",
              f.SHA256: "shieldwall-sha256.txt"}
_SAFE = re.compile(rb"[A-Za-z0-9._/~=&?%@+,-]+")


def content(value: str) -> str:
    """A `content` argument: safe bytes as they are, every other byte in `|hex|`."""
    data = value.encode("utf-8")
    out: list[str] = []
    pos = 0
    for m in _SAFE.finditer(data):
        if m.start() > pos:
            out.append("|" + " ".join(f"{b:02x}" for b in data[pos:m.start()]) + "|")
        out.append(m.group().decode("ascii"))
        pos = m.end()
    if pos < len(data):
        out.append("|" + " ".join(f"{b:02x}" for b in data[pos:]) + "|")
    return "".join(out)


def dataset_rules(book: SidBook, hashes: frozenset[str] = frozenset(HASH_LISTS)) -> str:
    """The rules that look the datasets and hash lists up (fixed sids). A hash list rule is
    written only while its list (`hashes`: the kinds with entries) holds something: Suricata
    refuses a rule on an empty hash list ("rohash: no items"), and the whole rule file with it.
    """
    def rule(n: int, header: str, msg: str, body: str, name: str) -> str:
        return (f'alert {header} (msg:"SHIELDWALL {msg}"; {body} sid:{book.fixed(n)}; rev:1; '
                f"metadata:shieldwall_set {name};)\n")

    sets = [
        ("ip any any -> any any", "source address on a shared list",
         f"ip.src; dataset:isset,shieldwall-ipv4,type ipv4,load {SETS['ipv4']};", "ipv4"),
        ("ip any any -> any any", "destination address on a shared list",
         f"ip.dst; dataset:isset,shieldwall-ipv4,type ipv4,load {SETS['ipv4']};", "ipv4"),
        ("ip any any -> any any", "source IPv6 address on a shared list",
         f"ip.src; dataset:isset,shieldwall-ipv6,type ip,load {SETS['ipv6']};", "ipv6"),
        ("ip any any -> any any", "destination IPv6 address on a shared list",
         f"ip.dst; dataset:isset,shieldwall-ipv6,type ip,load {SETS['ipv6']};", "ipv6"),
        ("dns any any -> any any", "DNS query for a shared domain",
         "dns.query; to_lowercase; dataset:isset,shieldwall-domains,type string,load "
         f"{SETS['domains']};", "domains"),
        ("tls any any -> any any", "TLS SNI of a shared domain",
         "tls.sni; to_lowercase; dataset:isset,shieldwall-domains,type string,load "
         f"{SETS['domains']};", "domains"),
        ("http any any -> any any", "HTTP host of a shared domain",
         "http.host; dataset:isset,shieldwall-domains,type string,load "
         f"{SETS['domains']};", "domains"),
        ("tls any any -> any any", "TLS certificate on a shared list",
         "tls.cert_fingerprint; dataset:isset,shieldwall-tls-fingerprints,type string,load "
         f"{SETS['tls']};", "tls"),
    ]
    out = [rule(n, h, m, b, s) for n, (h, m, b, s) in enumerate(sets)]
    n = len(sets)
    for kind, keyword in ((f.MD5, "filemd5"), (f.SHA1, "filesha1"), (f.SHA256, "filesha256")):
        for proto in ("http", "smtp", "ftp-data", "smb", "nfs"):
            if kind in hashes:
                out.append(rule(n, f"{proto} any any -> any any",
                                f"{kind.upper()} of a file on a shared list",
                                f"{keyword}:{HASH_LISTS[kind]};", kind))
            n += 1
    return "".join(out)


def render(e: Entry, book: SidBook) -> tuple[str, str] | str:
    """(file, line) for the entry (a dataset line or a rule), or why there is none."""
    form = e.form
    if form is None:
        return e.reason
    if type(form) is f.Value:
        kind, value = form.kind, form.value
        if kind == f.IP:
            return (_IPV6 if ":" in value else _IPV4, value + "\n")
        if kind == f.DOMAIN:
            return (_DOMAINS, _b64(value))
        if kind == f.CERT_SHA1:
            pairs = ":".join(value[i:i + 2] for i in range(0, len(value), 2))
            return (SETS["tls"], _b64(pairs))
        listed = HASH_LISTS.get(kind)
        if listed is not None:
            return (listed, value + "\n")
        if kind == f.EMAIL:
            return "an email address: Suricata 7 has no keyword for envelope addresses"
        header, body, what = _rule_parts(kind, value)
        if not header:
            return body
    else:
        header, body, what = _flow_parts(form)
    msg = f"{what} {e.label}"[:100].strip()
    rule = f'alert {header} (msg:"SHIELDWALL {msg}"; {body}'
    sid, rev = book.get(e.id, fingerprint(rule + e.modified + e.tlp.short))
    meta = f"metadata:shieldwall_id {e.id}, tlp {e.tlp.name.lower()};"
    return (RULES, f"{rule} sid:{sid}; rev:{rev}; {meta})\n")


_IPV4, _IPV6, _DOMAINS = SETS["ipv4"], SETS["ipv6"], SETS["domains"]


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii") + "\n"


def _rule_parts(kind: str, value: str) -> tuple[str, str, str]:
    """(header, options, what) for a one-value rule; ("", reason, "") when there is none."""
    if kind == f.CIDR:
        return f"ip {value} any <> any any", "", "network"
    if kind == f.SUFFIX:
        return ("dns any any -> any any",
                f'dns.query; content:"{content("." + value)}"; endswith; nocase;',
                "domain suffix")
    if kind == f.URL:
        parts = urlsplit(value)
        if parts.scheme != "http":
            return "", "an https URL: its path is encrypted on the wire (export its domain)", ""
        host = parts.hostname or ""
        if not host:
            return "", "a URL without a host", ""
        uri = value[len(f"http://{parts.netloc}"):]
        try:
            port = parts.port or 80
        except ValueError:
            return "", "a URL with a bad port", ""
        return (f"http any any -> any {port}",
                f'flow:established,to_server; http.host; content:"{content(host)}"; '
                f'bsize:{len(host.encode())}; http.uri.raw; content:"{content(uri)}"; '
                f"bsize:{len(uri.encode())};", "URL")
    return "", f"{kind}: no Suricata form", ""


def _flow_parts(flow: f.Flow) -> tuple[str, str, str]:
    proto = flow.protocol or "ip"
    src = flow.src or "any"
    dst = flow.dst or "any"
    sport = "any" if flow.src_port is None else str(flow.src_port)
    dport = "any" if flow.dst_port is None else str(flow.dst_port)
    if ":" in src:
        src = f"[{src}]"
    if ":" in dst:
        dst = f"[{dst}]"
    return f"{proto} {src} {sport} -> {dst} {dport}", "flow:to_server;", "flow"
