"""The chain of custody: signed, hash-chained events; `verify` finds every change."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shieldwall.respond.custody import custody_event, genesis, heads, object_hash
from shieldwall.respond.model import RespondError
from shieldwall.respond.verify import verify_custody
from tests.respond.custody_case import custody_case


def test_a_recorded_case_verifies_and_its_chains_link(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    report = verify_custody(case.case_id, case.evidence, case.events, case.ring)
    assert report.ok, report.findings
    assert (report.evidence, report.events, report.chains) == (2, 7, 4)
    first, second = case.events[0], case.events[1]
    assert first["chain_seq"] == 1
    assert first["chain_prev"] == genesis(case.evidence[0]["id"], case.home.signing_public)
    assert second["chain_prev"] == object_hash(first)
    # The laptop's first event on the disk saw the home node's chain head.
    copied = case.events[2]
    assert copied["chain_seen"] == [{"signing_key": case.home.signing_public,
                                     "chain_seq": 2, "event_hash": object_hash(second)}]
    assert copied["object_marking_refs"] == case.evidence[0]["object_marking_refs"]
    assert copied["x_shieldwall_audience"] == case.evidence[0]["x_shieldwall_audience"]
    assert len(report.heads) == 4


def test_presentation_order_does_not_matter(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    report = verify_custody(case.case_id, case.evidence[::-1], case.events[::-1], case.ring)
    assert report.ok, report.findings


def test_bad_custody_input_is_refused(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    item = case.evidence[0]
    with pytest.raises(RespondError, match="custody action"):
        custody_event(keys=case.home, case_id=case.case_id, evidence=item, action="stolen",
                      actor="cert-south:carol", chain_heads={})
    with pytest.raises(RespondError, match="MEMBER:PERSON"):
        custody_event(keys=case.home, case_id=case.case_id, evidence=item, action="copied",
                      actor="carol", chain_heads={})
    with pytest.raises(RespondError, match="no colour"):
        custody_event(keys=case.home, case_id=case.case_id, evidence=item, action="copied",
                      actor="cert-south:carol", chain_heads={}, details={"colour": "red"})


# ---- the mutation corpus -------------------------------------------------------------------


def _flip(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        if not value:
            return "x"
        last = value[-1]
        return value[:-1] + ("A" if last != "A" else "B")
    if value is None:
        return "x"
    raise AssertionError(type(value))


def mutations(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every leaf of `obj` flipped, every key of every dict removed, every list item
    removed: (where, the mutated copy)."""
    if isinstance(obj, dict):
        for k in obj:
            for where, v in mutations(obj[k], (*path, k)):
                out = dict(obj)
                out[k] = v
                yield where, out
            out = {kk: vv for kk, vv in obj.items() if kk != k}
            yield "/".join(map(str, (*path, k))) + " removed", out
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            for where, v in mutations(item, (*path, i)):
                yield where, [*obj[:i], v, *obj[i + 1:]]
            yield "/".join(map(str, (*path, i))) + " removed", obj[:i] + obj[i + 1:]
    else:
        yield "/".join(map(str, path)), _flip(obj)


def test_every_field_of_every_item_and_event_flipped_is_detected(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    good = verify_custody(case.case_id, case.evidence, case.events, case.ring)
    assert good.ok
    tried, missed = 0, []
    for which, objs in (("evidence", case.evidence), ("events", case.events)):
        for i, obj in enumerate(objs):
            for where, mutated in mutations(obj):
                changed = copy.deepcopy(objs)
                changed[i] = mutated
                evidence = changed if which == "evidence" else case.evidence
                events = changed if which == "events" else case.events
                tried += 1
                # No remembered heads: a flipped field is seen without them.
                report = verify_custody(case.case_id, evidence, events, case.ring)
                if report.ok:
                    missed.append(f"{which}[{i}] {where}")
    assert tried > 250
    assert missed == []


def test_every_object_removed_is_detected_against_remembered_heads(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    good = verify_custody(case.case_id, case.evidence, case.events, case.ring)
    missed = []
    for i in range(len(case.events)):
        events = case.events[:i] + case.events[i + 1:]
        report = verify_custody(case.case_id, case.evidence, events, case.ring,
                                remembered=good.heads)
        if report.ok or {f.kind for f in report.findings} != {"missing"}:
            missed.append(i)
    for i in range(len(case.evidence)):
        report = verify_custody(case.case_id, case.evidence[:i] + case.evidence[i + 1:],
                                case.events, case.ring, remembered=good.heads)
        if report.ok:
            missed.append(f"evidence {i}")
    assert missed == []


def test_without_remembered_heads_only_a_chain_s_unseen_newest_event_can_go_unseen(
        tmp_path: Path) -> None:
    """What a hash chain cannot see alone: its newest events removed, when no other
    node's later event saw them. `case verify` remembers heads for that (and says so)."""
    case = custody_case(tmp_path)
    unseen = []
    for i in range(len(case.events)):
        events = case.events[:i] + case.events[i + 1:]
        if verify_custody(case.case_id, case.evidence, events, case.ring).ok:
            unseen.append(i)
    newest = {max((e for e in case.events if (e["evidence_ref"], e["signing_key"]) == k),
                  key=lambda e: e["chain_seq"])["id"] for k in heads(case.events)}
    assert unseen
    assert {case.events[i]["id"] for i in unseen} <= newest


def test_malformed_evidence_and_custody_are_refused_by_validation(tmp_path: Path) -> None:
    from shieldwall.stix.validate import object_error

    case = custody_case(tmp_path)
    item, event = case.evidence[0], case.events[2]
    assert object_error(item) is None and object_error(event) is None
    for bad in ({**item, "sha256": "AB" * 32}, {**item, "size": -1},
                {k: v for k, v in item.items() if k != "kept_at"},
                {**event, "custody_action": "stolen"},
                {k: v for k, v in event.items() if k != "signature"},
                {**event, "chain_seq": 0}, {**event, "signing_key": "short"},
                {**event, "chain_seen": [{"signing_key": event["signing_key"]}]}):
        assert object_error(bad), bad


def test_events_in_one_millisecond_stay_in_order_whatever_their_precision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A STIX timestamp has millisecond precision when the microseconds are round
    (`.123Z`), else microseconds (`.123400Z`): the later of two events in one millisecond
    must not read as the earlier (as text, `.123Z` sorts after `.123400Z`)."""
    import shieldwall.respond.model as model

    ticks = iter(range(1_765_000_000_123_000, 1_765_000_001_000_000, 500))  # .123Z, .123500Z, ...
    monkeypatch.setattr(model, "now_us", lambda: next(ticks))
    case = custody_case(tmp_path)
    created = [e["created"] for e in case.events]
    assert any(len(c) == 24 for c in created) and any(len(c) == 27 for c in created)
    report = verify_custody(case.case_id, case.evidence, case.events, case.ring)
    assert report.ok, report.findings
