"""Hunting a case's observables in logs and in the node's stored telemetry.

The observables become indicators held only in memory (never stored, never shared: a
case's AMBER+STRICT value must not reach the node's indicator feed), compiled by the same
`IndicatorIndex` and matched by the same `Hunter` (streaming) and `retro_hunt` (Parquet
telemetry) as `shieldwall hunt`. What comes back is counted per observable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shieldwall.respond.cases import Case, add_to_case, item_marking
from shieldwall.respond.model import OBSERVABLE_PATHS, Marking, event, observable_text
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import format_ts
from shieldwall.store import Store

_EPOCH = "1970-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class ObservableHits:
    observable: str  # TYPE:VALUE
    observed_data_id: str
    hits: int
    first: str
    last: str


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern_of(text: str) -> str | None:
    """The STIX pattern that matches an observable `TYPE:VALUE` (`file:ALGO=hex`)."""
    kind, _, value = text.partition(":")
    if kind == "file":
        algo, _, digest = value.partition("=")
        return f"[file:hashes.'{algo}' = '{_quote(digest)}']"
    path = OBSERVABLE_PATHS.get(kind)
    return f"[{path} = '{_quote(value)}']" if path else None


def _indicators(case: Case) -> dict[str, tuple[str, str]]:
    """indicator id -> (observable text, observed-data id), for the case's observables."""
    out: dict[str, tuple[str, str]] = {}
    for od in case.observed:
        text = observable_text(od)
        if text and pattern_of(text):
            out[deterministic_id("indicator", f"case-hunt|{case.id}|{text}")] = (text, od["id"])
    return out


def hunt_case(case: Case, *, paths: Sequence[Path] = (), fmt: str | None = None,
              telemetry: Path | None = None, since_us: int | None = None
              ) -> list[ObservableHits]:
    """Hits of the case's observables in `paths` and, with `since_us`, in the telemetry
    stored under `telemetry` (the node's `<home>/telemetry`) over that period."""
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.sightings import Sightings

    wanted = _indicators(case)
    if not wanted:
        return []
    index = IndicatorIndex(force_warninglisted=True)  # the team asked for these values
    index.add_many([{
        "type": "indicator", "spec_version": "2.1", "id": iid, "created": _EPOCH,
        "modified": _EPOCH, "name": text, "pattern": str(pattern_of(text)),
        "pattern_type": "stix", "valid_from": _EPOCH,
    } for iid, (text, _) in wanted.items()])
    sightings = Sightings("identity--00000000-0000-4000-8000-000000000000", TLP.RED)
    hunter = Hunter(index, sightings)
    if since_us is not None and telemetry is not None:
        from shieldwall.detect.retro import retro_hunt

        retro_hunt(telemetry, index, hunter, since_us)
    if paths:
        hunter.run(paths, fmt)
    else:
        hunter.finish()
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    count: dict[str, int] = {}
    for w in sightings.windows.values():
        iid = w.indicator_id
        count[iid] = count.get(iid, 0) + w.count
        first[iid] = min(first.get(iid, w.first_us), w.first_us)
        last[iid] = max(last.get(iid, w.last_us), w.last_us)
    return [ObservableHits(wanted[i][0], wanted[i][1], count[i], format_ts(first[i]),
                           format_ts(last[i])) for i in sorted(count, key=lambda i: first[i])]


def record_hits(store: Store, member: str, case: Case, hits: Sequence[ObservableHits]
                ) -> list[dict[str, Any]]:
    """One timeline event per observable hit, marked as the observable (it repeats its
    value's presence in the member's logs) within the case's audience."""
    by_id = {o["id"]: o for o in case.observed}
    made = []
    for h in hits:
        od = by_id.get(h.observed_data_id)
        base = Marking.of(od) if od else item_marking(case)
        mark = Marking(max(base.tlp, item_marking(case).tlp), base.audience
                       or item_marking(case).audience)
        obj = event(creator=member, name=f"{h.observable} seen {h.hits}x in {member}'s logs",
                    marking=mark, start=h.first, fidelity="second",
                    source=f"case observable hunt on {member}'s node",
                    observable_refs=[h.observed_data_id])
        obj["end_time"], obj["end_time_fidelity"] = h.last, "second"
        add_to_case(store, member, case.id, obj)
        made.append(obj)
    return made
