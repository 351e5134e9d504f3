"""`shieldwall blind`: indicators too sensitive to share still protect every ally.

`blind publish` (owner) turns the member's own protected indicators into a blind set that
federates to allies; `blind resolve` (ally) matches telemetry against the sets it holds,
asking each owner to evaluate what it saw; `blind list` shows sets, hits and the audit
log; `blind rotate` moves the owner to a new key epoch and republishes. `blind pss-export`
and `blind pss-import` speak CIRCL's Private Search Set, a weaker group-key format.
docs/blind.md has the whole story.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, console, counted, open_node, out

blind_app = typer.Typer(help="Blind matching: protect allies with indicators you cannot "
                             "share (docs/blind.md).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(blind_app, name="blind")


def _print(text: str) -> None:
    out.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


@blind_app.command("publish")
def publish(
    home: HomeOpt = None,
    tlp: Annotated[str, typer.Option(help="Protect this member's indicators at this level "
                                          "or narrower (red, amber+strict, ...).")] = "red",
    ids: Annotated[list[str] | None, typer.Option("--id", help="Exactly these indicators "
                                                                "(repeatable).")] = None,
    set_tlp: Annotated[str, typer.Option(help="The level the set itself is shared at.")]
    = "amber",
    workers: Annotated[int | None, typer.Option(help="Processes evaluating (default: one "
                                                     "per core).")] = None,
) -> None:
    """Publish (or republish) this member's blind set with the current key epoch."""
    from shieldwall.blind.sets import BlindSetError, select_entries
    from shieldwall.blind.sets import publish as do_publish
    from shieldwall.keys.oprf import oprf_key
    from shieldwall.stix.markings import TLP

    node = open_node(home)
    try:
        level, shared = TLP.parse(tlp), TLP.parse(set_tlp)
    except ValueError as exc:
        raise BlindSetError(str(exc)) from None
    entries, skipped = select_entries(node.store, node.member, level, ids)
    if not entries:
        raise BlindSetError(f"no indicator of {node.member} at {level.label} or narrower "
                            "with values a blind set can hold"
                            + (f" ({len(skipped)} skipped: only = and IN patterns)"
                               if skipped else ""))
    key = oprf_key(node.config.home)
    pub = do_publish(node.store, node.member, key, entries, tlp=shared, workers=workers)
    parts = sum(1 for o in pub.objects if o["type"] != "extension-definition")
    _print(f"published {counted(pub.values, 'value')} of "
           f"{counted(len({e.indicator_id for e in entries}), 'indicator')} in "
           f"{counted(parts, 'blind set')} ({shared.label}, key epoch {key.epoch}, key "
           f"{key.key_id})")
    for rid, why in list(skipped.items())[:10]:
        _print(f"  skipped {rid}: {why}")


@blind_app.command("rotate")
def rotate(home: HomeOpt = None) -> None:
    """Move to a new key epoch and republish the current sets with it."""
    from sqlalchemy import select

    from shieldwall.blind.sets import own_sets, select_entries
    from shieldwall.blind.sets import publish as do_publish
    from shieldwall.blind.tables import blind_handles
    from shieldwall.keys.oprf import oprf_key
    from shieldwall.keys.oprf import rotate as do_rotate
    from shieldwall.stix.markings import TLP

    node = open_node(home)
    current = own_sets(node.store, node.member)
    ids = {o["id"] for o in current}
    with node.store.engine.connect() as conn:
        indicators = sorted({r[0] for r in conn.execute(select(
            blind_handles.c.indicator_id).where(blind_handles.c.set_id.in_(ids)))}) if ids \
            else []
    epoch = do_rotate(node.config.home)
    if not indicators:
        _print(f"key epoch {epoch}; no blind set to republish")
        return
    level = min((TLP.parse(_level(o)) for o in current), default=TLP.AMBER)
    entries, _ = select_entries(node.store, node.member, TLP.RED, indicators)
    pub = do_publish(node.store, node.member, oprf_key(node.config.home, epoch), entries,
                     tlp=level)
    _print(f"key epoch {epoch}: republished {counted(pub.values, 'value')}; sets of the "
           "earlier epoch are revoked and no longer evaluated")


def _level(obj: dict[str, Any]) -> str:
    from shieldwall.stix.markings import KNOWN_TLP_REFS

    for ref in obj.get("object_marking_refs") or ():
        if ref in KNOWN_TLP_REFS:
            return KNOWN_TLP_REFS[ref].short
    return "amber"


def sender(node: Any, owner: str) -> Any:
    """How this node asks `owner`'s node to evaluate: over the peer of that name."""
    return _sender(node.config.peers, owner)


def senders(home: Path) -> Any:
    """`sender` for a process that runs for long (`serve`'s retro-hunt of arrivals): the
    peers are read from the home's configuration when asked, so a peer added or changed
    while the node serves is the one used."""
    def send_for(owner: str) -> Any:
        from shieldwall.config import load_config

        return _sender(load_config(home).peers, owner)

    return send_for


def _sender(peers: Any, owner: str) -> Any:
    from shieldwall.blind.resolve import ResolveError
    from shieldwall.federation.peers import credentials
    from shieldwall.taxii.blind_routes import RemoteEvaluate

    peer = next((p for p in peers if p.name == owner), None)
    if peer is None:
        def missing(epoch: int, body: bytes) -> tuple[int, bytes, str]:
            raise ResolveError(f"no peer named {owner!r}: add the owner's node as a peer "
                               "('shieldwall peer add') to resolve its blind set")
        return missing
    return RemoteEvaluate(peer.url, credentials(peer))


@blind_app.command("resolve")
def resolve(
    paths: Annotated[list[Path], typer.Argument(help="Telemetry files or directories.")],
    home: HomeOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="zeek, suricata, stix, jsonl "
                                                             "(default: detected).")] = None,
) -> None:
    """Match telemetry against the blind sets this node holds; hits go to their owners."""
    from shieldwall.blind.hits import hunt

    node = open_node(home)
    result = hunt(node.store, node.member, paths, lambda owner: sender(node, owner), fmt=fmt)
    for h in result.hits[:50]:
        _print(h.say())
    for why in dict.fromkeys(result.failed.values()):
        console.print(f"not matched against the blind set of {why}", markup=False,
                      highlight=False, emoji=False, soft_wrap=True)
    _print(f"{counted(result.events, 'event')}, {counted(len(result.hits), 'blind hit')}, "
           f"{counted(result.sightings, 'sighting')} for the owners; "
           f"{counted(result.resolved, 'value')} looked up, "
           f"{result.asked_owner:,} asked of the owners")


@blind_app.command("list")
def list_sets(
    home: HomeOpt = None,
    audit: Annotated[bool, typer.Option(help="Show the evaluation audit log (owner).")] = False,
) -> None:
    """Blind sets held, hits on this member's sets, and this member's blind hits."""
    from shieldwall.blind.hits import HANDLE_PROPERTY, OWNER_PROPERTY
    from shieldwall.blind.sets import held_sets, indicator_of_handle, own_sets
    from shieldwall.keys.oprf import current_epoch
    from shieldwall.store import Query

    node = open_node(home)
    mine = own_sets(node.store, node.member)
    _print(f"this node: key epoch {current_epoch(node.config.home)}, "
           f"{counted(sum(int(o.get('count', 0)) for o in mine), 'protected value')} in "
           f"{counted(len(mine), 'set')}")
    for s in held_sets(node.store, exclude_owner=node.member):
        _print(f"held: {s.id} of {s.owner}, key epoch {s.epoch}, {counted(s.count, 'value')}")
    names: dict[str, str] = {}
    for row in node.store.iter_query(Query(types=["sighting"])):
        obj = row.obj()
        handle = obj.get(HANDLE_PROPERTY)
        if not handle:
            continue
        if obj.get(OWNER_PROPERTY) == node.member:
            iid = indicator_of_handle(node.store, handle) or "?"
            if iid not in names:
                ind = node.store.get(iid) if iid != "?" else None
                names[iid] = (ind.name or iid) if ind else iid
            _print(f"hit on {names[iid]} ({iid}) seen by {row.source}: "
                   f"{obj.get('count')} time(s), last {obj.get('last_seen')}")
        else:
            for e in obj.get("x_shieldwall_explanation") or []:
                _print(f"a protected indicator of {e.get('protected_by')} matched "
                       f"{e.get('file')} line {e.get('line')} ({e.get('field')})")
    if audit:
        from shieldwall.blind.evaluate import audit_log

        for a in audit_log(node.store):
            _print(f"{a['at_us']} {a['member']} epoch {a['epoch']} {a['asked']:,} "
                   f"{a['outcome']} {a['detail']}")


@blind_app.command("pss-export")
def pss_export(
    out_dir: Annotated[Path, typer.Argument(help="Directory to write the PSS into.")],
    key_file: Annotated[Path, typer.Option(help="The group's shared key (a file).")],
    home: HomeOpt = None,
    tlp: Annotated[str, typer.Option(help="This member's indicators at this level or "
                                          "narrower.")] = "amber",
    name: Annotated[str, typer.Option(help="The set's name.")] = "shieldwall",
) -> None:
    """Export a CIRCL Private Search Set: protects the values from outsiders only."""
    from shieldwall.blind.psi import export_pss, read_group_key
    from shieldwall.blind.sets import select_entries
    from shieldwall.stix.markings import TLP

    node = open_node(home)
    entries, _ = select_entries(node.store, node.member, TLP.parse(tlp))
    n = export_pss(out_dir, read_group_key(key_file), [(e.path, e.value) for e in entries],
                   name=name, description=f"indicators of {node.member}")
    console.print("[yellow]A PSS uses a key the whole group holds: any holder of the key "
                  "can test values offline. It protects only against outsiders.[/]")
    _print(f"wrote {counted(n, 'value')} to {out_dir}")


@blind_app.command("pss-check")
def pss_check(
    pss_dir: Annotated[Path, typer.Argument(help="A PSS directory (json + bloom).")],
    key_file: Annotated[Path, typer.Option(help="The group's shared key (a file).")],
    values: Annotated[list[str], typer.Argument(help="Values to test.")],
) -> None:
    """Test values against an imported CIRCL Private Search Set."""
    from shieldwall.blind.psi import import_pss, read_group_key

    pss = import_pss(pss_dir, read_group_key(key_file))
    for i, v in enumerate(values, 1):
        _print(f"{'in set' if pss.contains(v) else 'not in set'}: line {i}")
