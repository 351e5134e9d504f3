"""The owner's evaluator: allies only, the daily quota, the alarm, the audit log, epochs."""

from __future__ import annotations

import logging

from voprf import ristretto

from shieldwall.blind.evaluate import Evaluator, Limits, audit_log, metrics
from shieldwall.blind.tables import blind_usage
from shieldwall.keys.oprf import rotate


def _blinded(n: int) -> bytes:
    return b"".join(bytes(ristretto.Client.blind(f"v{i}".encode())[1].serialize())
                    for i in range(n))


def test_an_ally_is_answered_and_counted(store, tmp_path):
    ev = Evaluator(tmp_path, store)
    before = metrics()
    a = ev("cert-east", "ally", 1, _blinded(3))
    assert a.status == 200 and len(a.body) == 64 + 3 * 32
    after = metrics()
    assert after["blind_requests_total"] == before["blind_requests_total"] + 1
    assert after["blind_evaluations_total"] == before["blind_evaluations_total"] + 3
    (row,) = audit_log(store)
    assert (row["member"], row["asked"], row["outcome"]) == ("cert-east", 3, "answered")


def test_partners_and_organisations_are_refused(store, tmp_path):
    ev = Evaluator(tmp_path, store)
    for tier in ("partner", "organisation"):
        a = ev("someone", tier, 1, _blinded(1))
        assert a.status == 403 and not a.body
    assert [r["outcome"] for r in audit_log(store)] == ["refused", "refused"]


def test_quota_refuses_at_once_and_alarms(store, tmp_path, caplog):
    ev = Evaluator(tmp_path, store, Limits(daily_quota=5, alarm_floor=1_000))
    assert ev("cert-east", "ally", 1, _blinded(4)).status == 200
    with caplog.at_level(logging.WARNING, "shieldwall.blind"):
        a = ev("cert-east", "ally", 1, _blinded(2))
    assert a.status == 429 and "daily quota of 5" in a.message
    assert int(a.headers["Retry-After"]) > 0
    assert "alarm: ally cert-east" in caplog.text
    assert {r["outcome"] for r in audit_log(store)} >= {"quota", "alarm"}
    # another ally has its own quota
    assert ev("cert-west", "ally", 1, _blinded(5)).status == 200


def test_alarm_on_a_day_far_above_the_usual(store, tmp_path, caplog):
    with store.engine.begin() as conn:  # a week of ~100 a day
        conn.execute(blind_usage.insert(), [
            {"member": "cert-east", "day": f"2000-01-0{d}", "asked": 100, "requests": 1}
            for d in range(1, 8)])
    ev = Evaluator(tmp_path, store, Limits(alarm_factor=10, alarm_floor=10))
    # the history is older than 14 days: nothing usual is known, the floor applies
    with caplog.at_level(logging.WARNING, "shieldwall.blind"):
        assert ev("cert-east", "ally", 1, _blinded(8)).status == 200
        assert "alarm" not in caplog.text
        assert ev("cert-east", "ally", 1, _blinded(8)).status == 200
    assert "asked about 16 values today" in caplog.text
    assert sum(r["outcome"] == "alarm" for r in audit_log(store)) == 1
    with caplog.at_level(logging.WARNING, "shieldwall.blind"):
        caplog.clear()
        assert ev("cert-east", "ally", 1, _blinded(8)).status == 200
    assert "alarm" not in caplog.text  # raised once a day, when the line is crossed


def test_stale_epoch_and_malformed_bodies(store, tmp_path):
    ev = Evaluator(tmp_path, store)
    assert ev("cert-east", "ally", 1, _blinded(1)).status == 200
    rotate(tmp_path)
    a = ev("cert-east", "ally", 1, _blinded(1))
    assert a.status == 409 and "current one (2)" in a.message
    assert ev("cert-east", "ally", 2, _blinded(1)).status == 200
    assert ev("cert-east", "ally", 2, b"").status == 400
    assert ev("cert-east", "ally", 2, b"\x01" * 33).status == 400
    assert ev("cert-east", "ally", 2, b"\xff" * 32).status == 400  # not a group element
