"""Media types: what a TAXII 2.1 client sends and accepts (section 1.6.8)."""

from __future__ import annotations

TAXII_21 = "application/taxii+json;version=2.1"
STIX_21 = "application/stix+json;version=2.1"


def _parse(value: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for item in value.split(","):
        kind, *params = [p.strip() for p in item.split(";")]
        opts = {}
        for p in params:
            k, _, v = p.partition("=")
            opts[k.strip().lower()] = v.strip().strip('"')
        out.append((kind.lower(), opts))
    return out


def accepts_taxii(accept: str | None) -> bool:
    """Absent, `*/*`, `application/*` or `application/taxii+json` (version 2.1 or none)."""
    if not accept:
        return True
    for kind, opts in _parse(accept):
        if opts.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if kind in ("*/*", "application/*"):
            return True
        if kind == "application/taxii+json" and opts.get("version", "2.1") == "2.1":
            return True
    return False


def is_taxii_content(content_type: str | None) -> bool:
    if not content_type:
        return False
    parsed = _parse(content_type)
    if len(parsed) != 1:
        return False
    kind, opts = parsed[0]
    return kind == "application/taxii+json" and opts.get("version", "2.1") == "2.1"
