"""CIRCL Private Search Set (PSS): the interoperable lower tier of blind matching.

PROTECTS ONLY AGAINST OUTSIDERS. A PSS hashes each value with a key the whole group holds
(here HMAC-SHA-256) and ships the hashes in a Bloom filter: anyone holding the key (every
member of the group) can test any value offline, so enumerating every IPv4 address costs
them minutes. Use it for AMBER sets where a group key is acceptable and the other side
speaks PSS (MISP feeds, CIRCL's tools); for values an ally must not learn, use the owner-
keyed blind sets (`blind.sets`), which an ally cannot test without asking the owner.

The feed directory, as the PSS specification lays it out:
- `private-search-set.json`: the metadata (version, name, description, generated-timestamp,
  algorithm, keyid, bloomfilter {capacity, fp-probability, format}, canonicalization-format,
  misp-attribute-types);
- `private-search-set.bloom`: the Bloom filter, `poppy-v2` format, written by `poppy-py`
  (CIRCL's own binding); each entry is the lower-case hex HMAC of the canonical value
  (`stix.values`), as UTF-8.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shieldwall.errors import ShieldwallError
from shieldwall.stix import values as canon

META = "private-search-set.json"
BLOOM = "private-search-set.bloom"
ALGORITHM = "HMAC-SHA-256"
FORMAT = "poppy-v2"
FP_PROBABILITY = 0.0001
MAX_BLOOM_BYTES = 512 * 1024 * 1024
_MISP_TYPES = {"ipv4-addr:value": "ip-dst", "ipv6-addr:value": "ip-dst",
               "domain-name:value": "domain", "url:value": "url", "email-addr:value": "email"}


class PssError(ShieldwallError):
    """A Private Search Set cannot be written or read; the message says why."""


def read_group_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise PssError(f"{path}: cannot read the group key ({exc.strerror})") from None
    if len(key) < 16:
        raise PssError(f"{path}: a group key needs at least 16 bytes")
    return key


def keyed(key: bytes, value: str) -> bytes:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest().encode()


def export_pss(out_dir: Path, key: bytes, values: list[tuple[str, str]], *, name: str,
               description: str, keyid: str = "shieldwall-group") -> int:
    """Write a PSS of (path, canonical value) pairs; the number of distinct values."""
    import poppy

    distinct = sorted({v for _, v in values})
    bf = poppy.BloomFilter.with_version(2, max(len(distinct), 1), FP_PROBABILITY)
    for v in distinct:
        bf.insert_bytes(keyed(key, v))
    out_dir.mkdir(parents=True, exist_ok=True)
    bf.save(str(out_dir / BLOOM))
    types = sorted({_MISP_TYPES.get(p, "text") for p, _ in values}) or ["text"]
    meta = {
        "version": 1,
        "name": name,
        "description": f"{description} (protects only against outsiders: every holder of "
                       "the group key can test values)",
        "generated-timestamp": int(time.time()),
        "algorithm": ALGORITHM,
        "keyid": keyid,
        "bloomfilter": {"capacity": max(len(distinct), 1), "fp-probability": FP_PROBABILITY,
                        "format": FORMAT},
        "canonicalization-format": "shieldwall stix.values (IDNA A-labels, RFC 5952, "
                                   "lower-case hex)",
        "misp-attribute-types": types,
    }
    (out_dir / META).write_text(json.dumps(meta, indent=2) + "\n")
    return len(distinct)


@dataclass
class Pss:
    meta: dict[str, Any]
    key: bytes
    bloom: Any

    def contains(self, value: str) -> bool:
        """Whether `value` (any spelling) is probably in the set (Bloom: false positives at
        the metadata's `fp-probability`)."""
        return bool(self.bloom.contains_bytes(keyed(self.key, canon.guess(value.strip()))))


def import_pss(pss_dir: Path, key: bytes) -> Pss:
    import poppy

    try:
        meta = json.loads((pss_dir / META).read_text())
    except (OSError, ValueError) as exc:
        raise PssError(f"{pss_dir / META}: not PSS metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("algorithm") != ALGORITHM:
        raise PssError(f"{pss_dir / META}: algorithm {meta.get('algorithm')!r} is not "
                       f"{ALGORITHM}, the only one this node reads")
    fmt = (meta.get("bloomfilter") or {}).get("format")
    if fmt != FORMAT:
        raise PssError(f"{pss_dir / META}: Bloom format {fmt!r}; this node reads {FORMAT}")
    path = pss_dir / BLOOM
    if not path.is_file() or path.stat().st_size > MAX_BLOOM_BYTES:
        raise PssError(f"{path}: missing or larger than {MAX_BLOOM_BYTES:,} bytes")
    try:
        bloom = poppy.load(str(path))
    except Exception as exc:  # the Rust binding raises its own error types
        raise PssError(f"{path}: not a {FORMAT} Bloom filter ({exc})") from None
    return Pss(meta, key, bloom)
