"""`shieldwall hygiene`: the Pledge's checks (passwords, patches, mail) and the posture.

Thin: each command reads its input, calls one function in `shieldwall.pledge`, renders.
Renderers print only what a report object exposes: counts, names, reasons; the checks
are written so that nothing secret reaches a report in the first place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, console, open_node, out
from shieldwall.errors import ShieldwallError

hygiene = typer.Typer(help="The Pledge: cyber hygiene checks and each member's posture.",
                      no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
RecordOpt = Annotated[bool, typer.Option(
    "--record", help="Keep this run's counts in the node for the next posture snapshot.")]


def register(app: typer.Typer) -> None:
    app.add_typer(hygiene, name="hygiene")


def _print_json(data: Any) -> None:
    import orjson

    out.print_json(orjson.dumps(data).decode())


def _record(home: Path | None, check: str, summary: dict[str, Any]) -> None:
    from shieldwall.pledge.posture import record_check

    node = open_node(home)
    try:
        record_check(node.store, node.member, check, summary)
    finally:
        node.close()
    console.print(f"[dim]recorded {check} counts for the next posture snapshot[/dim]")


@hygiene.command("passwords")
def passwords(
    file: Annotated[Path, typer.Argument(help="Credential export (secretsdump, shadow, CSV, "
                                              "user:hash lines).")],
    plaintext: Annotated[bool, typer.Option(
        "--plaintext", help="Lines are user:password candidates (a policy check).")] = False,
    corpus: Annotated[list[Path] | None, typer.Option(
        "--corpus", help="Extra sorted hex corpus (Pwned Passwords format): NAME.ntlm.txt or "
                         "NAME.sha1.txt. Repeatable.")] = None,
    budget: Annotated[float, typer.Option(
        help="Seconds to spend trying common passwords against salted hashes.")] = 10.0,
    top: Annotated[int, typer.Option(
        help="Most common passwords to try against each salted hash.")] = 1000,
    min_length: Annotated[int, typer.Option(help="Policy minimum length.")] = 12,
    as_json: JsonOpt = False,
    record: RecordOpt = False,
    home: HomeOpt = None,
) -> None:
    """Rate every account; print account names and reasons, never a password or hash."""
    from shieldwall.pledge.corpus import BreachCorpus, PrefixIndex, bundled_corpus
    from shieldwall.pledge.credentials import read_credentials
    from shieldwall.pledge.passwords import Budget, Policy, audit

    base = bundled_corpus()
    if corpus:
        index = PrefixIndex()
        for path in corpus:
            alg = "ntlm" if ".ntlm" in path.name.lower() else "sha1"
            index.add_hex_file(alg, path)
        base = BreachCorpus(_Union(base.source, index), base.common,
                            base.label + " + " + ", ".join(p.name for p in corpus))
    report = audit(read_credentials(file, plaintext=plaintext), base,
                   Policy(min_length=min_length), Budget(seconds=budget, max_candidates=top))
    if as_json:
        _print_json(report.to_json())
    else:
        render_passwords(report)
    if record:
        _record(home, "passwords", report.summary())


class _Union:
    """Two range sources asked as one (the bundled list plus a member's own corpus)."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def range(self, algorithm: str, prefix: int) -> frozenset[bytes]:
        return frozenset().union(*(s.range(algorithm, prefix) for s in self.sources))

    def contains(self, algorithm: str, digest: bytes) -> bool:
        return any(s.contains(algorithm, digest) for s in self.sources)


def render_passwords(report: Any) -> None:
    from rich.table import Table

    from shieldwall.pledge.passwords import REASONS

    out.print(f"[bold]Password audit[/bold]: {report.accounts} accounts, "
              f"{report.at_risk} at risk, corpus: {report.corpus}")
    if report.by_kind:
        out.print("formats: " + ", ".join(f"{k} {v}" for k, v in sorted(report.by_kind.items())))
    for kind, s in report.slow.items():
        how = "complete" if s["complete"] else "stopped by the time budget"
        out.print(f"{kind}: {s['accounts']} accounts tried against the top {s['tried_top']} of "
                  f"{s['planned_top']} common passwords ({how}); {s['found_common']} found")
    if report.counts:
        t = Table("finding", "accounts", title="Findings")
        for code, n in sorted(report.counts.items(), key=lambda kv: -kv[1]):
            t.add_row(REASONS[code], str(n))
        out.print(t)
    if report.reuse_groups:
        out.print("[bold]Shared passwords[/bold] (each line one password, shown as its accounts):")
        for g in report.reuse_groups[:50]:
            out.print(f"  {len(g)}: " + ", ".join(g[:20]) + (" ..." if len(g) > 20 else ""))
    flagged = [r for r in report.results if r.reasons and r.reasons != ["locked"]]
    if flagged:
        t = Table("account", "format", "reasons", title="Accounts to act on")
        for r in flagged[:500]:
            t.add_row(r.account, r.kind, "; ".join(REASONS[c] for c in r.reasons))
        out.print(t)
        if len(flagged) > 500:
            out.print(f"... and {len(flagged) - 500} more (use --json for all)")


def _fail(msg: str) -> None:
    raise ShieldwallError(msg)
