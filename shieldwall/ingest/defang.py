"""Refanging and auto-typing of indicator values, shared by the IOC-list reader and warning lists.

Refanging uses `ioc-fanger` (5.1.1, MIT, maintained by the ioc-fang project with a release in
2026): it knows far more defang conventions than a list of our own would (`hxxp`, `[.]`, `(.)`,
`{.}`, `[dot]`, `(dot)`, `-dot-`, `[:]`, `[://]`, `[@]`, `[at]`, `(at)`, `punto`, ...) and its
authors fix the false fangs users report. We rejected `iocextract` (last release 2023) and
`ioc-finder` (pyparsing grammar: slow per line, and it types values its own way, so the IOC
lists and the warning lists could disagree on what a value is). Typing stays here, on `ipaddress`
and the IANA TLD list shipped with `pymispwarninglists`, so "is this a domain?" is answered by
the registry of real TLDs, not a guess: `e.g`, `report.final` and `setup.exe` are not domains.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
from functools import cache
from pathlib import Path

import orjson

# The kinds Shieldwall auto-types, in the order a value is tried.
IPV4 = "ipv4"
IPV6 = "ipv6"
IPV4_CIDR = "ipv4-cidr"
IPV6_CIDR = "ipv6-cidr"
URL = "url"
EMAIL = "email"
MD5 = "md5"
SHA1 = "sha1"
SHA256 = "sha256"
DOMAIN = "domain"
FILENAME = "filename"
KINDS = (IPV4, IPV6, IPV4_CIDR, IPV6_CIDR, URL, EMAIL, MD5, SHA1, SHA256, DOMAIN, FILENAME)

_HEX = {32: MD5, 40: SHA1, 64: SHA256}
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]{1,15}://[^\s/?#]+[^\s]*$", re.IGNORECASE)
_EMAIL_RE = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@([^@\s]+)$", re.IGNORECASE)
_FILENAME_RE = re.compile(r"^[^\\/:*?\"<>|\s]{1,200}\.([A-Za-z0-9]{1,5})$")

# Extensions analysts list as payloads. `zip` and `sh` are also TLDs: a bare `invoice.zip`
# reads as a file, a defanged `invoice[.]zip` as the domain it was defanged to be. `.com`
# executables are too rare beside `.com` domains to claim the extension.
def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FILE_EXTENSIONS = words(
    "exe dll scr sys drv cpl ocx msi msp lnk pif bat cmd ps1 psm1 vbs vbe js jse wsf wsh hta "
    "jar class apk dex ipa elf so bin dmg pkg app iso img vhd vhdx doc docx docm dot dotm xls "
    "xlsx xlsm xlsb xlam ppt pptx pptm rtf pdf one chm zip rar 7z gz tgz bz2 xz cab arj ace "
    "sh py pl php asp aspx jsp war txt html htm svg url inf reg tmp dat"
)


def misp_lists_dir() -> Path:
    """The MISP warning-lists data `pymispwarninglists` ships (one folder per list), found
    without importing the package: its import pulls jsonschema's format checkers (~3 s)."""
    spec = importlib.util.find_spec("pymispwarninglists")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pymispwarninglists is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "data" / "misp-warninglists" / "lists"


@cache
def iana_tlds() -> frozenset[str]:
    """The IANA root zone as MISP ships it, plus `onion` (RFC 7686), which threat intel uses."""
    data = orjson.loads((misp_lists_dir() / "tlds" / "list.json").read_bytes())
    return frozenset(t.lower() for t in data["list"]) | {"onion"}


# The fanger runs ~40 regexes (~300 µs a value); a value with none of these marks is clean.
_DEFANG_MARK = re.compile(r"[\[\](){}]|hxx|xxp|fxp|meow|dot|punto|punkt|arroba|\s", re.I)


def refang(text: str) -> str:
    """`hxxps://evil[.]example` -> `https://evil.example`; leaves clean text as it is."""
    if not text or not _DEFANG_MARK.search(text):
        return text
    from ioc_fanger import fang  # imported on the first defanged value: ~15 ms

    return fang(text)


def is_domain(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    if len(labels) < 2 or len(value) > 253:
        return False
    tld = labels[-1]
    if not (tld in iana_tlds() or tld.startswith("xn--")):
        return False
    return all(_LABEL_RE.match(label) for label in labels)


def _domain_form(value: str) -> str | None:
    """The lower-case ASCII (IDNA) form of a host name, or None if it is not one."""
    v = value.strip().rstrip(".").lower()
    if not v.isascii():
        try:
            v = v.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return v if is_domain(v) else None


def _classify_ip(value: str) -> tuple[str, str] | None:
    """An address or a network (a /32 or /128 is the address itself), in canonical form."""
    if "/" in value and "://" not in value:
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None
        if net.num_addresses == 1:
            return (IPV4 if net.version == 4 else IPV6), str(net.network_address)
        return (IPV4_CIDR if net.version == 4 else IPV6_CIDR), str(net)
    try:
        addr = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None
    return (IPV4 if addr.version == 4 else IPV6), str(addr)


def classify(raw: str, *, defanged: bool | None = None) -> tuple[str, str] | None:
    """(kind, normalised value) for one candidate value, or None if it is no IOC.

    `defanged` says whether the analyst's text was defanged before `refang`; when None it is
    worked out here. Normalisation is what makes the deterministic id stable: hashes and host
    names lower-case, networks in canonical form.
    """
    value = raw.strip().strip("\"'<>")
    if not value:
        return None
    # Addresses first, on the text as written: the fanger reads `db8::/32` as a scheme.
    ip = _classify_ip(value)
    if ip:
        return ip
    fanged = refang(value)
    if defanged is None:
        defanged = fanged != value
    value = fanged.strip()
    if not value or any(c.isspace() for c in value):
        return None

    ip = _classify_ip(value)
    if ip:
        return ip

    if _URL_RE.match(value):
        scheme, rest = value.split("://", 1)
        return URL, f"{scheme.lower()}://{rest}"
    m = _EMAIL_RE.match(value)
    if m:
        host = _domain_form(m.group(1))
        if host:
            local = value.rsplit("@", 1)[0]
            return EMAIL, f"{local}@{host}"
        return None
    if len(value) in _HEX and _HEX_RE.match(value):
        return _HEX[len(value)], value.lower()

    fm = _FILENAME_RE.match(value)
    is_file_ext = fm is not None and fm.group(1).lower() in FILE_EXTENSIONS
    if is_file_ext and not defanged:
        return FILENAME, value
    host = _domain_form(value)
    if host:
        return DOMAIN, host
    if is_file_ext:
        return FILENAME, value
    return None
