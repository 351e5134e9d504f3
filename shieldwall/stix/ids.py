"""STIX identifiers: `type--uuid`."""

from __future__ import annotations

import re
import uuid

_ID_RE = re.compile(
    r"^([a-z0-9][a-z0-9-]{1,248}[a-z0-9])--"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

# Namespace the STIX 2.1 specification fixes for deterministic SCO ids (section 2.9).
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")


def valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID_RE.match(value) is not None


def stix_type_of(stix_id: str) -> str:
    return stix_id.split("--", 1)[0]


def new_id(stix_type: str) -> str:
    return f"{stix_type}--{uuid.uuid4()}"


def deterministic_id(stix_type: str, key: str) -> str:
    """A stable id for an object derived from `key`, so re-imports do not create new objects."""
    return f"{stix_type}--{uuid.uuid5(SCO_NAMESPACE, key)}"
