"""A plain CSV of the exported values (`id,kind,value,tlp,valid_until,name`), as MISP offers.

Written with the csv module (RFC 4180 quoting): a value with a comma or a quote stays one
field. Values are the checked canonical forms (`forms`), names made plain (`text.plain`), so
no field holds a line break either.
"""

from __future__ import annotations

import csv
import io

from shieldwall.outputs.sensors import forms as f
from shieldwall.outputs.sensors.active import Entry
from shieldwall.stix.timestamps import format_ts

FILE = "csv"
HEADER = "id,kind,value,tlp,valid_until,name\r\n"


def render(e: Entry) -> tuple[str, str] | str:
    """(file, line) for the entry, or the reason it is not listed."""
    form = e.form
    if not isinstance(form, f.Value):
        return e.reason or "a flow: no single value to list"
    buf = io.StringIO()
    csv.writer(buf).writerow([e.id, form.kind, form.value, e.tlp.short,
                              format_ts(e.until_us) if e.until_us is not None else "",
                              e.label])
    return (FILE, buf.getvalue())
