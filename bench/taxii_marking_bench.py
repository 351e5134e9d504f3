"""What stating the held TLP costs a TAXII objects page (`stix.outbound.held_text`).

Same-run A/B on a 5,000-object page: `Store.read_rows` and the page's items as stored,
against the same with each object's held level stated. Two stores of 20,000 indicators:
GREEN-marked (the ref is found in the text) and unmarked, held at AMBER (each object is
parsed, given the ref and re-serialised).

    .venv/bin/python bench/taxii_marking_bench.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.stix.outbound import held_text
from shieldwall.store import Provenance, Query, Store


def indicator(i: int, marked: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "name": f"bench indicator {i}",
        "pattern": f"[ipv4-addr:value = '10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}']",
        "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
    }
    if marked:
        obj["object_marking_refs"] = [tlp_marking_ref(TLP.GREEN)]
    return obj


def main() -> None:
    for marked in (True, False):
        with tempfile.TemporaryDirectory() as d:
            store = Store.open(f"sqlite:///{d}/s.db")
            store.put_many([indicator(i, marked) for i in range(20_000)], Provenance("bench"),
                           default_tlp=TLP.AMBER)
            q = Query(limit=5_000, versions="last")
            plain, stated = [], []
            for _ in range(15):
                t = time.perf_counter()
                rows, _ = store.read_rows(q)
                items = [r.json for r in rows]
                plain.append(time.perf_counter() - t)
                t = time.perf_counter()
                rows, _ = store.read_rows(q)
                items = [held_text(r.json, r.tlp) or r.json for r in rows]
                stated.append(time.perf_counter() - t)
            assert len(items) == 5_000
            store.close()
        what = "GREEN-marked" if marked else "unmarked, held at AMBER"
        print(f"{what}: as stored {statistics.median(plain) * 1000:.1f} ms, stating the level "
              f"{statistics.median(stated) * 1000:.1f} ms per 5,000-object page")


if __name__ == "__main__":
    main()
