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


@hygiene.command("patches")
def patches(
    inventory: Annotated[Path, typer.Argument(help="dpkg -l / dpkg-query -W output, CycloneDX "
                                                   "or SPDX JSON, pip freeze.")],
    release: Annotated[str | None, typer.Option(
        help="Debian release of the inventory (12, bookworm, ...).")] = None,
    as_json: JsonOpt = False,
    record: RecordOpt = False,
    home: HomeOpt = None,
) -> None:
    """Installed versions with known vulnerabilities (from imported OSV/KEV/Debian data)."""
    from shieldwall.pledge.inventory import read_inventory
    from shieldwall.pledge.patches import check, index_from_store

    fmt, packages = read_inventory(inventory)
    node = open_node(home)
    try:
        index = index_from_store(node.store)
    finally:
        node.close()
    if index.records == 0:
        raise ShieldwallError("no vulnerability data in this node: import OSV, CISA KEV or "
                              "Debian security data first ('shieldwall import FILE')")
    report = check(packages, index, fmt, release)
    if as_json:
        _print_json(report.to_json())
    else:
        render_patches(report)
    if record:
        _record(home, "patches", report.summary())


def render_patches(report: Any) -> None:
    from rich.table import Table

    s = report.summary()
    out.print(f"[bold]Patch check[/bold] ({report.inventory_format}): {s['packages']} packages, "
              f"{s['compared']} compared against {report.vuln_records} vulnerability records; "
              f"{s['vulnerable_packages']} vulnerable ({s['kev_packages']} known exploited), "
              f"{s['cves']} CVEs")
    for n in report.notes:
        out.print(f"[dim]note: {n}[/dim]")
    if report.not_compared:
        out.print("not compared (no version rules): " + ", ".join(
            f"{k} {v}" for k, v in sorted(report.not_compared.items())))
    if report.vulnerable:
        t = Table("KEV", "package", "installed", "CVE", "fixed in", "source")
        for v in report.vulnerable[:1000]:
            t.add_row("[red]yes[/red]" if v.kev else "", v.package, v.installed, v.cve,
                      ", ".join(v.fixed[:3]), ", ".join(v.sources[:2]))
        out.print(t)


@hygiene.command("mail")
def mail(
    path: Annotated[Path, typer.Argument(help="A message (.eml) or a directory of them.")],
    own_domain: Annotated[list[str] | None, typer.Option(
        "--own-domain", help="The member's own domain, for lookalike checks. Repeatable.")] = None,
    max_mb: Annotated[int, typer.Option(help="Read at most this much of each message.")] = 25,
    as_json: JsonOpt = False,
    record: RecordOpt = False,
    no_sightings: Annotated[bool, typer.Option(
        "--no-sightings", help="Do not record indicator hits as sightings.")] = False,
    home: HomeOpt = None,
) -> None:
    """Triage suspicious mail: authentication, spoofing, lookalikes, indicators, attachments."""
    from shieldwall.pledge.mail import (
        MB,
        IndicatorSet,
        MailLimits,
        indicators_from_store,
        iter_messages,
        sightings_for,
        triage_file,
    )
    from shieldwall.store import Provenance
    from shieldwall.store.audience import stored_marking

    if not path.exists():
        raise ShieldwallError(f"{path}: no such file or directory")
    node = None
    indicators = IndicatorSet()
    try:
        node = open_node(home)
        indicators = indicators_from_store(node.store)
    except ShieldwallError:
        console.print("[dim]no node: indicators not matched, no sightings recorded[/dim]")
    limits = MailLimits(max_bytes=max_mb * MB)
    results = [triage_file(p, own_domain or [], indicators, limits) for p in iter_messages(path)]
    if node is not None and not no_sightings:
        sightings = sightings_for(results, node.member, node.config.sighting_tlp_level,
                                  marking_of=stored_marking(node.store))
        if sightings:
            res = node.store.put_many(sightings, Provenance(node.member, "pledge"),
                                      default_tlp=node.config.sighting_tlp_level)
            console.print(f"recorded {res.stored} sighting(s) of shared indicators")
    if as_json:
        _print_json([r.to_json() for r in results])
    else:
        render_mail(results)
    if record and node is not None:
        _record(home, "mail", mail_summary(results))
    if node is not None:
        node.close()


def mail_summary(results: list[Any]) -> dict[str, Any]:
    from collections import Counter

    verdicts = Counter(r.verdict for r in results)
    bad = verdicts["malicious"] + verdicts["suspicious"]
    return {"messages": len(results), "verdicts": dict(verdicts),
            "score": round(1 - bad / len(results), 4) if results else 1.0}


def render_mail(results: list[Any]) -> None:
    colour = {"malicious": "red", "suspicious": "yellow", "caution": "cyan"}
    for r in results:
        c = colour.get(r.verdict, "green")
        out.print(f"[bold {c}]{r.verdict.upper()}[/bold {c}] {r.source}")
        out.print(f"  from {r.sender or '?'}  subject {r.subject[:100]!r}")
        for f in r.findings:
            if f.severity != "info":
                out.print(f"  - [{f.severity}] {f.text}")
        for a in r.attachments:
            for x in a.walk():
                out.print(f"  attachment {x.name} ({x.size} bytes) sha256 {x.sha256 or '-'}")
    s = mail_summary(results)
    out.print(f"{s['messages']} message(s): " + ", ".join(
        f"{k} {v}" for k, v in sorted(s["verdicts"].items())))


@hygiene.command("snapshot")
def snapshot(
    assessment: Annotated[Path | None, typer.Option(
        help="CIS v8 IG1 self-assessment (TOML/JSON: safeguard id = answer).")] = None,
    tlp: Annotated[str, typer.Option(help="TLP of the snapshot.")] = "amber+strict",
    audience: Annotated[list[str] | None, typer.Option(
        "--audience", "--share-with",
        help="Member name(s) that may receive it: the coordination node's member name "
             "(default: coordination-cell). Repeatable.")] = None,
    home: HomeOpt = None,
) -> None:
    """Snapshot today's posture (recorded check counts + self-assessment) into the store."""
    from shieldwall.pledge.posture import load_assessment
    from shieldwall.pledge.posture import snapshot as take
    from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP

    try:
        level = TLP.parse(tlp)
    except ValueError as exc:
        raise ShieldwallError(str(exc)) from None
    answers = load_assessment(assessment) if assessment else None
    node = open_node(home)
    try:
        obj = take(node.store, node.member, answers, level, audience)
        peers = {p.name for p in node.config.peers}
    finally:
        node.close()
    named = obj.get(AUDIENCE_PROPERTY) or []
    out.print(f"posture of {obj['x_shieldwall_member']} on {obj['x_shieldwall_date']}: "
              f"index {obj['x_shieldwall_index']} ({level.label}"
              + (f", shared with {', '.join(named)})" if named else ")"))
    if level >= TLP.AMBER_STRICT and peers and not peers & set(named):
        out.print("[yellow]no peer of this node is named in the audience, so federation will "
                  "not carry it; name the coordination node's member with --share-with[/yellow]")


@hygiene.command("report")
def report(
    member: Annotated[str | None, typer.Option(help="Only this member.")] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Posture and trend of every member whose snapshots this node holds."""
    from shieldwall.pledge.posture import trends

    node = open_node(home)
    try:
        data = trends(node.store, member)
    finally:
        node.close()
    if as_json:
        _print_json(data)
        return
    if not data:
        out.print("no posture snapshots yet: run 'shieldwall hygiene snapshot'")
        return
    from rich.table import Table

    t = Table("member", "latest", "index", "trend", "commitments (latest)")
    for m, snaps in data.items():
        last = snaps[-1]
        series = " → ".join(f"{s['x_shieldwall_index']:g}" for s in snaps[-6:])
        delta = last["x_shieldwall_index"] - snaps[0]["x_shieldwall_index"]
        trend = f"{series} ({delta:+.1f} since {snaps[0]['x_shieldwall_date']})"
        com = ", ".join(f"{k} {round(100 * v)}" for k, v in
                        (last.get("x_shieldwall_commitments") or {}).items() if v is not None)
        t.add_row(m, last["x_shieldwall_date"], f"{last['x_shieldwall_index']:g}", trend, com)
    out.print(t)
