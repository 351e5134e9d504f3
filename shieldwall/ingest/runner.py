"""`shieldwall import`, as a function: read, validate, flag, store, report.

Every format's reader yields STIX objects; this module validates them, stores them in
batches (each batch one transaction, so a killed import loses at most one batch and a
re-run finds the rest as duplicates), flags indicators on warning lists, and counts
what happened per file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldwall.ingest.base import Format, ImportError_, ReadOptions, Rejected, formats
from shieldwall.ingest.sniff import head_of, looks_binary
from shieldwall.stix.markings import TLP, tlp_of_marking_definition
from shieldwall.stix.validate import object_error, validate_strict
from shieldwall.store import Provenance, Store

# Given an indicator, the warning lists it hits, as (list name, matched value).
Flagger = Callable[[dict[str, Any]], list[tuple[str, str]]]


@dataclass
class FileReport:
    path: str
    format: str
    read: int = 0
    new: int = 0
    new_versions: int = 0
    history: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    warninglisted: list[tuple[str, str, str]] = field(default_factory=list)  # id, value, list

    @property
    def stored(self) -> int:
        return self.new + self.new_versions + self.history


def detect_format(path: Path, forced: str | None = None) -> Format:
    known = formats()
    if forced:
        if forced not in known:
            raise ImportError_(f"unknown format {forced!r} (known: {', '.join(sorted(known))})")
        return known[forced]
    head = head_of(path)
    if not head:
        raise ImportError_(f"{path}: empty file")
    if looks_binary(head):
        raise ImportError_(f"{path}: binary data, not a STIX, MISP, CSV or text file")
    for fmt in known.values():
        if fmt.sniff(head, path):
            return fmt
    raise ImportError_(f"{path}: format not recognised; use --format ({', '.join(known)})")


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file())
        elif p.exists():
            yield p
        else:
            raise ImportError_(f"{p}: no such file or directory")


def import_file(
    store: Store,
    path: Path,
    *,
    source: str,
    producer: dict[str, Any],
    default_tlp: TLP,
    tlp: TLP | None = None,
    fmt: str | None = None,
    flagger: Flagger | None = None,
    strict: bool = False,
    batch_size: int = 5_000,
    progress: Callable[[int], None] | None = None,
) -> FileReport:
    """Import one file. Raises ImportError_ when the file as a whole is unusable."""
    format_ = detect_format(path, fmt)
    report = FileReport(str(path), format_.name)
    opts = ReadOptions(producer=producer, tlp=tlp)
    check = validate_strict if strict else object_error
    overrides = _custom_tlp_markings(store)
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        result = store.put_many(
            batch, Provenance(source, "import"),
            default_tlp=tlp if tlp is not None else default_tlp,
            tlp_overrides=overrides, batch_size=len(batch),
        )
        report.new += result.new
        report.new_versions += result.new_versions
        report.history += result.history
        report.duplicates += result.duplicates
        report.rejected.extend(Rejected(i, r) for i, r in result.rejected)
        if flagger is not None:
            _flag(store, batch, flagger, report)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for item in format_.read(path, opts):
        report.read += 1
        if isinstance(item, Rejected):
            report.rejected.append(item)
            continue
        if item.get("type") == "marking-definition" and isinstance(item.get("id"), str):
            # Honour the level a marking declares even if the definition itself is invalid
            # (custom ids for TLP): falling back to the default could widen the audience.
            level = tlp_of_marking_definition(item)
            if level is not None:
                overrides[item["id"]] = level
        err = check(item)
        if err is not None:
            report.rejected.append(Rejected(str(item.get("id", "?")), err))
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    flush()
    return report


# Lists that say what a piece of infrastructure *is*, not that it is benign: a C2 domain
# under a dynamic-DNS provider or a C2 address in a datacenter range must still alert.
_INFRASTRUCTURE_LIST = re.compile(r"dynamic dns|vpn|data ?cent|hosting", re.IGNORECASE)


def benign_hit(list_name: str, reason: str) -> bool:
    """Does this warning-list hit mean 'known benign, do not alert'?

    Only when the value itself is on a list of benign values. A partial hit (a parent
    domain, "x.example.com is under example.com", from popularity lists such as Tranco;
    a substring, "fbi.zyns.com contains zyns.com") or a hit on an infrastructure list
    is kept as information for the analyst (tag `warninglist-info`), and the indicator
    still alerts.
    """
    partial = " is under " in reason or " contains " in reason
    return not (partial or _INFRASTRUCTURE_LIST.search(list_name))


def _flag(store: Store, batch: list[dict[str, Any]], flagger: Flagger, report: FileReport) -> None:
    tags: list[tuple[str, str, str | None]] = []
    for obj in batch:
        if obj.get("type") != "indicator":
            continue
        benign: list[str] = []
        info: list[str] = []
        for list_name, reason in flagger(obj):
            if benign_hit(list_name, reason):
                report.warninglisted.append((obj["id"], reason, list_name))
                benign.append(f"{list_name}: {reason}")
            else:
                info.append(f"{list_name}: {reason}")
        if benign:
            tags.append((obj["id"], "warninglist", "; ".join(benign)))
        if info:
            tags.append((obj["id"], "warninglist-info", "; ".join(info)))
    store.tag(tags)


def _custom_tlp_markings(store: Store) -> dict[str, TLP]:
    """TLP levels of marking definitions already stored (MISP and others mint their own ids)."""
    from shieldwall.store import Query

    found: dict[str, TLP] = {}
    for row in store.iter_query(Query(types=["marking-definition"])):
        level = tlp_of_marking_definition(row.obj())
        if level is not None:
            found[row.id] = level
    return found
