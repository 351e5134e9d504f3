"""Sensor exports: what one export decides (new sids, the files' bytes) follows from the store
alone, not from the process that wrote it.

A first export hands out a Suricata sid to each indicator exported as a rule, bucket by
bucket (`outputs.sensors.active.BUCKETS`). Within a bucket the indicators were taken in a
set's order, which follows Python's string hashing (`PYTHONHASHSEED`): two nodes, or one node
exporting again after its sid table was lost, numbered the same rules differently.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from shieldwall.outputs.sensors.active import bucket_of
from shieldwall.outputs.sensors.export import Exporter, Targets
from shieldwall.outputs.sensors.sids import sid_map
from shieldwall.store import Provenance, Store
from tests.factories import indicator

NOW = 1_750_000_000_000_000  # 2025-06-15


def same_bucket_ids(n: int) -> list[str]:
    """`n` indicator ids that fall in one bucket, found by counting (deterministic)."""
    by_bucket: dict[int, list[str]] = {}
    k = 0
    while True:
        iid = f"indicator--{uuid.UUID(int=k, version=4)}"
        got = by_bucket.setdefault(bucket_of(iid), [])
        got.append(iid)
        if len(got) == n:
            return got
        k += 1


def test_new_sids_follow_id_order_within_a_bucket(store: Store, tmp_path: Path) -> None:
    ids = same_bucket_ids(12)
    objs = []
    for k, iid in enumerate(reversed(ids)):  # stored in the reverse of id order
        obj = indicator(oid=iid)
        obj["pattern"] = f"[domain-name:value LIKE '%.s{k}.example.org']"  # one rule each
        objs.append(obj)
    store.put_many(objs, Provenance("estonia"))

    report = Exporter(store, Targets(suricata=tmp_path / "suricata")).run(NOW)

    assert report.exported["suricata"] == 12
    by_id = {iid: s for s, iid in sid_map(store).items()}
    assert sorted(by_id) == sorted(ids)
    assert [by_id[i] for i in sorted(ids)] == sorted(by_id.values())
    rules = (tmp_path / "suricata" / "shieldwall.rules").read_text()
    for iid in ids:
        assert f"sid:{by_id[iid]}; rev:1; metadata:shieldwall_id {iid}," in rules
