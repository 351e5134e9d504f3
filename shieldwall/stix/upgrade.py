"""STIX 2.0 objects as STIX 2.1, where the upgrade is mechanical.

MITRE still publishes ATT&CK as STIX 2.0 (mitre/cti), and older feeds and exports are 2.0.
Neither the `stix2` library nor `stix2-elevator` (STIX 1.x to 2.x) nor misp-stix (2.0 to
MISP) upgrades 2.0 JSON to 2.1, so the rules are written here, from the STIX 2.1
specification's list of changes and checked against OASIS's own 2.1 edition of its 2.0
example reports (tests/ingest/test_stix20_upgrade.py):

- every object gets `spec_version: "2.1"` (2.0 put it on the bundle only);
- the 2.0 `labels` that 2.1 turned into a typed property become that property
  (`indicator_types`, `malware_types`, `tool_types`, `threat_actor_types`, `report_types`);
  on other types `labels` stays labels;
- an indicator gets `pattern_type: "stix"` (2.0 patterns are STIX patterns);
- a malware gets `is_family: true`: a 2.0 Malware object described a kind of malware, which
  is how ATT&CK's own 2.1 edition marks every one of its software entries;
- an empty list is left out (ATT&CK 2.0 writes `"external_references": []`,
  `"x_mitre_contributors": []`; STIX says a list, when present, is not empty).

An object that already has a `spec_version` is left as it is.
"""

from __future__ import annotations

from typing import Any

# 2.0 `labels` that STIX 2.1 names by type.
_TYPED_LABELS = {
    "indicator": "indicator_types",
    "malware": "malware_types",
    "tool": "tool_types",
    "threat-actor": "threat_actor_types",
    "report": "report_types",
}


def upgrade_20(obj: dict[str, Any]) -> dict[str, Any]:
    """The 2.1 form of a 2.0 object (changed in place and returned)."""
    if "spec_version" in obj or not isinstance(obj.get("type"), str):
        return obj
    kind = obj["type"]
    for key in [k for k, v in obj.items() if v == []]:
        del obj[key]
    obj["spec_version"] = "2.1"
    typed = _TYPED_LABELS.get(kind)
    if typed is not None and "labels" in obj and typed not in obj:
        obj[typed] = obj.pop("labels")
    if kind == "indicator":
        obj.setdefault("pattern_type", "stix")
    elif kind == "malware":
        obj.setdefault("is_family", True)
    return obj
