"""STIX 2.1 basics shared by every room: ids, timestamps, markings, canonical JSON."""

from shieldwall.stix.canonical import canonical_json, loads
from shieldwall.stix.ids import new_id, stix_type_of, valid_id
from shieldwall.stix.markings import TLP, resolve_tlp, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, now_us, parse_ts, version_us

__all__ = [
    "TLP",
    "canonical_json",
    "format_ts",
    "loads",
    "new_id",
    "now_us",
    "parse_ts",
    "resolve_tlp",
    "stix_type_of",
    "tlp_marking_ref",
    "valid_id",
    "version_us",
]
