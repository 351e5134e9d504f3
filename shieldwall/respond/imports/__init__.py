"""Migration: a case exported from TheHive 5 or DFIR-IRIS becomes a Shieldwall case of the
importing member (`thehive.py`, `iris.py` say what maps to what).

Bounded, whole or nothing:

- the file is read no further than `MAX_BYTES` and parsed with `bounded_json` (nested at
  most 64 levels); a case of more than `MAX_ITEMS` items is refused;
- every object is made and checked (the model's constructors, then `stix.validate`) before
  anything is written, and all of them are written in one transaction: a file refused for
  any reason, at any point, leaves the store as it was, with one line saying why;
- ids and times come from the export, so importing the same file again stores nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shieldwall.respond.imports import iris, thehive
from shieldwall.respond.imports.common import Builder, when
from shieldwall.respond.model import RespondError
from shieldwall.stix import bounded_json
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import format_ts, now_us
from shieldwall.stix.validate import object_error
from shieldwall.store import Provenance, Store

MAX_BYTES = 32 << 20  # the IRIS API reference's example case is 30 kB
MAX_ITEMS = 50_000  # objects of one case (items and their links)
SOURCES = {"thehive": thehive, "iris": iris}
_NAMES = {"thehive": "TheHive 5", "iris": "DFIR-IRIS"}


class CaseImportError(RespondError):
    """An export that cannot be imported; nothing of it was stored."""


@dataclass
class ImportResult:
    case_id: str
    name: str
    counts: dict[str, int]
    stored: int  # objects new to the store (0 when the same export was imported before)
    duplicates: int

    def summary(self) -> str:
        parts = [f"{n:,} {k[:-1] if n == 1 and k.endswith('s') else k}"
                 for k, n in sorted(self.counts.items())]
        return (", ".join(parts) or "the case alone") + (
            f"; {self.stored:,} objects stored, {self.duplicates:,} already held")


def read(path: Path, source: str) -> Any:
    """The export's JSON, bounded in size and depth."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise CaseImportError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise CaseImportError(f"{path}: larger than {MAX_BYTES >> 20} MiB; a case export "
                              "is refused past that size")
    try:
        return bounded_json.loads(data)
    except ValueError as exc:
        raise CaseImportError(f"{path}: not a {_NAMES[source]} export: "
                              f"{' '.join(str(exc).split())[:160]}") from None


def convert(doc: Any, member: str, source: str, *, default_tlp: TLP | None = None
            ) -> Builder:
    """The case's objects, made and checked, nothing stored."""
    module = SOURCES[source]
    try:
        fallback = when(module.fallback_time(doc)) or format_ts(now_us())
        b = Builder(member=member, source=source, case_key=module.case_key(doc),
                    fallback_time=fallback, default_tlp=default_tlp or TLP.AMBER)
        module.convert(doc, b)
    except RespondError as exc:
        said = str(exc)
        raise CaseImportError(said if said.startswith("not a ")
                              else f"{_NAMES[source]} export: {said}") from None
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        # A field of an unexpected shape (a number where text belongs, an object for a
        # list): refused in one line, as any other bad file.
        raise CaseImportError(f"{_NAMES[source]} export: a field has an unexpected shape "
                              f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
                              ) from None
    if len(b.objs) > MAX_ITEMS:
        raise CaseImportError(f"{_NAMES[source]} export: {len(b.objs):,} objects; a case is "
                              f"refused past {MAX_ITEMS:,}")
    for obj in b.objs:
        why = object_error(obj)
        if why:
            raise CaseImportError(f"{_NAMES[source]} export: {obj['type']} {obj['id']}: {why}")
    return b


def import_file(store: Store, member: str, path: Path, source: str, *,
                default_tlp: TLP | None = None) -> ImportResult:
    """Import the export at `path` (`source`: thehive or iris) as `member`'s case."""
    if source not in SOURCES:
        raise CaseImportError(f"--from {source!r}: choose one of {', '.join(SOURCES)}")
    return import_doc(store, member, read(path, source), source, default_tlp=default_tlp)


def import_doc(store: Store, member: str, doc: Any, source: str, *,
               default_tlp: TLP | None = None) -> ImportResult:
    from shieldwall.respond.cases import LOCAL, ensure_published

    b = convert(doc, member, source, default_tlp=default_tlp)
    ensure_published(store, member)
    # One batch, one transaction: all of the case or none of it.
    result = store.put_many(b.objs, Provenance(member, LOCAL), batch_size=len(b.objs) + 1)
    if result.rejected:
        oid, why = result.rejected[0]
        raise CaseImportError(f"{_NAMES[source]} export: the store refused {oid}: {why} "
                              f"({len(result.rejected):,} refused; the others were stored)")
    return ImportResult(b.case_id, str(b.objs[0].get("name")), dict(b.counts),
                        result.stored, result.duplicates)
