"""A Zeek Intel framework file (`Intel::read_files`): one item per exported value.

Zeek reads it with its ASCII input reader: tab-separated, a `#fields` header, `-` for an unset
field, and no way to quote a tab or a newline, so a value holding one is never written (the
`forms` check refuses it before). `meta.source` is the STIX indicator id: Zeek logs it in
intel.log's `sources`, which is how a hit maps back to the indicator
(`detect.readers.sensor_alerts`); two indicators with the same value are two sources of one
item, as Zeek merges them.
"""

from __future__ import annotations

from shieldwall.outputs.sensors import forms as f
from shieldwall.outputs.sensors.active import Entry
from shieldwall.stix.markings import TLP

FILE = "shieldwall.intel"
_LABELS = {t: t.label for t in TLP}
HEADER = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n"
TYPES = {
    f.IP: "Intel::ADDR", f.CIDR: "Intel::SUBNET", f.DOMAIN: "Intel::DOMAIN",
    f.URL: "Intel::URL", f.EMAIL: "Intel::EMAIL", f.MD5: "Intel::FILE_HASH",
    f.SHA1: "Intel::FILE_HASH", f.SHA256: "Intel::FILE_HASH", f.CERT_SHA1: "Intel::CERT_HASH",
}


def render(e: Entry) -> tuple[str, str] | str:
    """(file, line) for the entry, or the reason it is not in Zeek's file."""
    form = e.form
    if type(form) is not f.Value:
        return e.reason or "a flow (addresses with direction, ports or protocol): Zeek's " \
            "Intel framework matches single values"
    kind = TYPES.get(form.kind)
    if kind is None:
        return "a domain suffix: Zeek's Intel framework matches whole names only"
    value = form.value
    if kind == "Intel::URL":
        value = value.partition("://")[2]
    tlp = _LABELS[e.tlp]
    return (FILE, f"{value}\t{kind}\t{e.id}\t{e.label} ({tlp})\t-\n" if e.label else
            f"{value}\t{kind}\t{e.id}\t{tlp}\t-\n")
