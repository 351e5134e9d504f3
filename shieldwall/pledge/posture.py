"""Each member's hygiene posture: check results plus a CIS Controls v8 IG1 self-assessment,
rolled up to the Pledge's commitments and kept as dated STIX snapshots.

Only counts travel: the checks hand over their `summary()` (numbers), never accounts,
packages or messages. A snapshot is a custom SDO `x-shieldwall-posture`, one per member
per day (a second snapshot the same day is a new version of it), marked at the member's
chosen TLP, by default AMBER+STRICT for the coordination cell named in its audience, so
federation carries it like any other object and a coordination node sees every trend.

Self-assessment scoring follows the shape of CIS's CSAT "Control Implemented" answer:
five levels from "not implemented" to "implemented on all systems" scored 0, 0.25, 0.5,
0.75, 1 (Shieldwall's reading of that scale; "not applicable" is left out of the mean).
Coverage is the mean over assessed safeguards; unanswered safeguards score 0 so an empty
assessment is not a perfect one.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from shieldwall.errors import ShieldwallError
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref

POSTURE_TYPE = "x-shieldwall-posture"
COORDINATION_CELL = "coordination-cell"
CHECKS = ("passwords", "patches", "mail")
# Weight of each check in the index; mail measures exposure more than hygiene, so less.
CHECK_WEIGHT = {"passwords": 0.4, "patches": 0.4, "mail": 0.2}


class AssessmentError(ShieldwallError):
    """A self-assessment file with an unknown safeguard or answer."""


@lru_cache(maxsize=1)
def cis_ig1() -> dict[str, Any]:
    text = resources.files("shieldwall.data").joinpath("pledge/cis_v8_ig1.json").read_text()
    return json.loads(text)


def load_assessment(path: Path) -> dict[str, str]:
    """TOML or JSON mapping safeguard id to an answer: `"5.2" = "implemented on all systems"`
    (a `[safeguards]` table or the top level)."""
    try:
        raw = path.read_text()
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw)
    except (OSError, ValueError) as exc:
        raise AssessmentError(f"{path}: {exc}") from None
    data = data.get("safeguards", data)
    scale = cis_ig1()["implementation_scale"]
    known = {s["id"] for s in cis_ig1()["safeguards"]}
    out: dict[str, str] = {}
    for k, v in data.items():
        sid = str(k)
        if sid not in known:
            raise AssessmentError(f"{path}: {sid!r} is not a CIS v8 IG1 safeguard")
        ans = str(v).strip().lower()
        if ans not in scale:
            raise AssessmentError(f"{path}: safeguard {sid}: answer {v!r} is not one of "
                                  + ", ".join(scale))
        out[sid] = ans
    return out


def score_assessment(answers: dict[str, str]) -> dict[str, Any]:
    data = cis_ig1()
    scale = data["implementation_scale"]
    per_commitment: dict[str, list[float]] = {c: [] for c in data["commitments"]}
    values: list[float] = []
    for s in data["safeguards"]:
        ans = answers.get(s["id"], "not implemented")
        v = scale[ans]
        if v is None:
            continue
        values.append(v)
        per_commitment[s["commitment"]].append(v)
    return {
        "coverage": round(sum(values) / len(values), 4) if values else 0.0,
        "answered": len(answers), "safeguards": len(data["safeguards"]),
        "implemented_fully": sum(1 for a in answers.values() if scale[a] == 1.0),
        "commitments": {c: round(sum(v) / len(v), 4) if v else None
                        for c, v in per_commitment.items()},
    }


def record_check(store: Any, member: str, check: str, summary: dict[str, Any]) -> None:
    """Keep a check's latest counts for the next snapshot (node-local, never shared as is)."""
    if check not in CHECKS:
        raise ValueError(check)
    store.kv_set(f"pledge:{member}:{check}", json.dumps(
        {"at": datetime.now(UTC).strftime("%Y-%m-%d"), **summary}, sort_keys=True))


def recorded_checks(store: Any, member: str) -> dict[str, dict[str, Any]]:
    out = {}
    for c in CHECKS:
        raw = store.kv_get(f"pledge:{member}:{c}")
        if raw:
            out[c] = json.loads(raw)
    return out


@dataclass
class Posture:
    member: str
    date: str
    index: float
    checks: dict[str, dict[str, Any]]
    cis: dict[str, Any] | None
    commitments: dict[str, float | None]


def compute(member: str, checks: dict[str, dict[str, Any]], cis: dict[str, Any] | None,
            date: str | None = None) -> Posture:
    """Index 0-100: the weighted mean of the check scores, averaged with CIS coverage when
    both exist; whichever exists alone otherwise."""
    parts = [(CHECK_WEIGHT[c], float(s["score"])) for c, s in checks.items() if "score" in s]
    check_score = (sum(w * v for w, v in parts) / sum(w for w, _ in parts)) if parts else None
    scores = [x for x in (check_score, cis["coverage"] if cis else None) if x is not None]
    index = round(100 * sum(scores) / len(scores), 1) if scores else 0.0
    commitments: dict[str, float | None] = dict(cis["commitments"]) if cis else {
        c: None for c in cis_ig1()["commitments"]}
    if check_score is not None:  # the checks are fundamental hygiene by the Pledge's words
        h = commitments.get("hygiene")
        commitments["hygiene"] = round(check_score if h is None else (h + check_score) / 2, 4)
    return Posture(member, date or datetime.now(UTC).strftime("%Y-%m-%d"), index, checks, cis,
                   commitments)


def to_stix(p: Posture, tlp: TLP = TLP.AMBER_STRICT,
            audience: list[str] | None = None) -> dict[str, Any]:
    from shieldwall.stix.identity import member_identity_id
    from shieldwall.stix.ids import deterministic_id
    from shieldwall.stix.timestamps import format_ts, now_us

    ts = format_ts(now_us())
    obj: dict[str, Any] = {
        "type": POSTURE_TYPE, "spec_version": "2.1",
        "id": deterministic_id(POSTURE_TYPE, f"{p.member}:{p.date}"),
        "created": f"{p.date}T00:00:00.000Z", "modified": ts,
        "created_by_ref": member_identity_id(p.member),
        "name": f"Pledge posture of {p.member} on {p.date}",
        "x_shieldwall_member": p.member, "x_shieldwall_date": p.date,
        "x_shieldwall_index": p.index,
        "x_shieldwall_checks": {c: {k: v for k, v in s.items() if k != "counts"}
                                for c, s in p.checks.items()},
        "x_shieldwall_commitments": p.commitments,
        "object_marking_refs": [tlp_marking_ref(tlp)],
    }
    if p.cis:
        obj["x_shieldwall_cis_ig1"] = p.cis
    if tlp >= TLP.AMBER:
        obj[AUDIENCE_PROPERTY] = audience or [COORDINATION_CELL]
    return obj


def snapshot(store: Any, member: str, answers: dict[str, str] | None, tlp: TLP = TLP.AMBER_STRICT,
             audience: list[str] | None = None) -> dict[str, Any]:
    from shieldwall.stix.identity import member_identity
    from shieldwall.store import Provenance

    cis = score_assessment(answers) if answers is not None else None
    p = compute(member, recorded_checks(store, member), cis)
    obj = to_stix(p, tlp, audience)
    store.put_many([member_identity(member), obj], Provenance(member, "pledge"),
                   default_tlp=tlp)
    return obj


def trends(store: Any, member: str | None = None,
           access: Any = None) -> dict[str, list[dict[str, Any]]]:
    """Every visible member's snapshots, oldest first (latest version of each day).
    `access`: a reader's store `Access` (the dashboard's); None reads as the node itself.

    Only snapshots their member wrote count: `created_by_ref` names the member's identity
    (which TAXII and federation let only that member's node claim). A snapshot naming a
    member it was not created by, whatever route it came in by, is nobody's posture."""
    from shieldwall.stix.identity import member_identity_id
    from shieldwall.store import Query

    out: dict[str, list[dict[str, Any]]] = {}
    for row in store.iter_query(Query(types=[POSTURE_TYPE], access=access)):
        obj = row.obj()
        m = obj.get("x_shieldwall_member", "")
        if (member and m != member) or not isinstance(m, str) \
                or row.created_by_ref != member_identity_id(m):
            continue
        out.setdefault(m, []).append(obj)
    for snaps in out.values():
        snaps.sort(key=lambda o: str(o.get("x_shieldwall_date", "")))
    return dict(sorted(out.items()))
