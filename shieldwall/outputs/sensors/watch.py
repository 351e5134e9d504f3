"""Keep sensor outputs current: poll the store's change cursor, rewrite what changed.

One cheap read a poll (`Store.seq_watch`, the newest `seq`) says whether anything arrived;
validity windows that open or close are noticed by the clock alone (`ActiveSet.refresh`),
and a warning list changing is a tag read every `full_every` polls. Files are replaced
atomically (`export.write_atomic`), so a sensor reloading at any moment reads a whole file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shieldwall.outputs.sensors.export import Exporter, Report
from shieldwall.stix.timestamps import now_us


def watch(exporter: Exporter, *, interval: float = 5.0, full_every: int = 12,
          until: Callable[[], bool] | None = None,
          on_export: Callable[[Report], None] | None = None) -> None:
    """Export now, then again each time the store or the clock changes the active set."""
    seq = exporter.store.seq_watch()
    try:
        report = exporter.run()
        if on_export is not None:
            on_export(report)
        last = seq.newest()
        polls = 0
        while until is None or not until():
            time.sleep(interval)
            polls += 1
            newest = seq.newest()
            if newest == last and polls % full_every and not exporter.active.due(now_us()):
                continue
            last = newest
            report = exporter.run()
            if report.changed and on_export is not None:
                on_export(report)
    finally:
        seq.close()
