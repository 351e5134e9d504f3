"""The contract every importer keeps, so `shieldwall import` treats all formats alike.

A reader takes a path and options and yields STIX objects ready for the store, or
`Rejected` for what it could not turn into STIX (with where and why). It streams:
a reader never holds a whole large file in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldwall.errors import ShieldwallError
from shieldwall.stix.markings import TLP


class ImportError_(ShieldwallError):
    """A file that cannot be imported at all (unreadable, wrong format, binary)."""


@dataclass(frozen=True)
class Rejected:
    where: str  # an object id, or "line 12"
    reason: str


@dataclass
class ReadOptions:
    """`tlp`: the level chosen on the command line (applied where an object carries none;
    IOC lists always take it). `producer`: the STIX identity the objects are attributed to."""

    producer: dict[str, Any]
    tlp: TLP | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Item = dict[str, Any] | Rejected
Reader = Callable[[Path, ReadOptions], Iterator[Item]]


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    read: Reader
    # Given the first bytes of a file and its path, is it this format? Checked in registry order.
    sniff: Callable[[bytes, Path], bool]


_REGISTRY: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    _REGISTRY[fmt.name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    """Every format, in sniffing order: the order of `formats.MODULES`, whatever order the
    importer modules happened to be imported in (a test importing the STIX reader first
    must not let it claim OSV or MISP files, which are JSON too)."""
    from shieldwall.ingest.formats import MODULES  # imports every importer

    rank = {name: i for i, name in enumerate(MODULES)}
    ordered = sorted(_REGISTRY.values(), key=lambda f: rank.get(f.read.__module__, len(rank)))
    return {f.name: f for f in ordered}
