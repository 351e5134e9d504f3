"""Imports every importer module so each registers its format; order is sniffing order."""

import importlib

# Most specific first: a MISP event and an OSV record are JSON too, so they sniff before STIX.
MODULES = [
    "shieldwall.ingest.misp",
    "shieldwall.ingest.vulns",
    "shieldwall.ingest.stix_bundle",
    "shieldwall.ingest.ioc_list",
]

for _name in MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # an importer not written yet; a missing dependency raises
        if exc.name != _name:
            raise
