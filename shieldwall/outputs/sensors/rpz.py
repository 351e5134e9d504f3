"""A DNS Response Policy Zone: every exported name answers NXDOMAIN (`CNAME .`).

Owner names are written relative to the zone's origin (the resolver's config names the zone,
e.g. `rpz.shieldwall.`); a domain-suffix indicator (`LIKE '%.example.org'`) is the wildcard
`*.example.org`, which covers the names below it and not the name itself, as the pattern does.
Only names whose labels are letters, digits, `-` and `_` reach here (`forms`), so no value can
add a record, a directive or a comment.
"""

from __future__ import annotations

from shieldwall.outputs.sensors import forms as f
from shieldwall.outputs.sensors.active import Entry

FILE = "rpz"


def header(serial: int) -> str:
    """SOA and NS of the zone. `serial` grows with the store's change cursor (RFC 1982)."""
    return ("$TTL 300\n"
            f"@ IN SOA localhost. hostmaster.localhost. {serial % 4_294_967_296} "
            "3600 600 86400 300\n"
            "@ IN NS localhost.\n")


# A name in the zone is the exported name plus the zone's origin, and a DNS name holds at
# most 255 octets: a longer one would make the resolver refuse the whole zone.
MAX_NAME = 200


def render(e: Entry) -> tuple[str, str] | str:
    """(file, line) for the entry, or the reason it is not in the zone ("": not a name)."""
    form = e.form
    if type(form) is f.Value:
        kind, value = form.kind, form.value
        if kind == f.DOMAIN or kind == f.SUFFIX:
            if len(value) > MAX_NAME:
                return f"a name over {MAX_NAME} characters: no room for the zone's origin"
            return (FILE, f"{value} CNAME .\n" if kind == f.DOMAIN else
                    f"*.{value} CNAME .\n")
    return e.reason  # addresses, URLs, hashes: not for a resolver, not listed
