"""`shieldwall case evidence|custody|verify|checkout|checkin|sync|key`: evidence, its chain
of custody, and offline kits.

Thin: parse, call `shieldwall.respond.evidence|verify|kit`, render. Reads go through the
node member's `Access` (`case_access`); a kit for a responder through that responder
member's (`--for`). The policy that judges what a kit brings in is built here and passed
down (respond sits below policy and federation in the house).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shieldwall.cli.case import CaseArg, TlpOpt, case_access, case_app, parse_tlp, print_json
from shieldwall.cli.common import HomeOpt, console, counted, open_node, out

if TYPE_CHECKING:
    from shieldwall.keys.signing import NodeKeys
    from shieldwall.node import Node
    from shieldwall.respond.kit import Judge, NodeRef, OpenedKit

evidence_app = typer.Typer(help="Evidence items: add, list.", no_args_is_help=True)
custody_app = typer.Typer(help="Custody events: handover, copy, analysis, reverify.",
                          no_args_is_help=True)
key_app = typer.Typer(help="This node's signing and kit keys: show, trust another's.",
                      no_args_is_help=True)
case_app.add_typer(evidence_app, name="evidence")
case_app.add_typer(custody_app, name="custody")
case_app.add_typer(key_app, name="key")

EvidenceArg = Annotated[str, typer.Argument(help="The evidence item (x-shieldwall-evidence--…).")]
Actor = Annotated[str, typer.Option("--actor", help="Who acts: MEMBER:PERSON.")]
When = Annotated[str | None, typer.Option("--time", help="When (default: now).")]
Note = Annotated[str | None, typer.Option("--note", help="Free text.")]
HEADS_FILE = "custody-heads.json"  # in the home: the chain heads `case verify` found good
KitLimit = Annotated[int, typer.Option(
    "--max-bytes", help="Refuse a kit larger than this, before decrypting it.")]


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, emoji=False)


def _keys(node: Node) -> NodeKeys:
    from shieldwall.keys.signing import node_keys

    return node_keys(node.config.home, node.member)


# ---- evidence --------------------------------------------------------------------------


@evidence_app.command("add")
def evidence_add(
    case_id: CaseArg,
    name: Annotated[str, typer.Option("--name", help="What it is (disk image of srv-07).")],
    kept_at: Annotated[str, typer.Option(
        "--kept-at", help="Where the member keeps it (the file never leaves it).")],
    collected_by: Annotated[str, typer.Option("--collected-by", help="MEMBER:PERSON.")],
    how: Annotated[str, typer.Option("--how", help="How it was collected.")],
    file: Annotated[Path | None, typer.Option(
        "--file", help="Hash this file for its SHA-256 and size.")] = None,
    sha256: Annotated[str | None, typer.Option("--sha256", help="Without --file.")] = None,
    size: Annotated[int | None, typer.Option("--size", help="Bytes, without --file.")] = None,
    collected: Annotated[str | None, typer.Option("--collected", help="When.")] = None,
    description: Note = None, tlp: TlpOpt = None, as_json: Annotated[
        bool, typer.Option("--json", help="Print the STIX objects.")] = False,
    home: HomeOpt = None,
) -> None:
    """Record an evidence item (only its metadata; the file stays where it is kept) and
    its first custody event, "collected", signed by this node."""
    from shieldwall.respond.cases import open_case
    from shieldwall.respond.evidence import hash_file, record_evidence
    from shieldwall.respond.model import RespondError

    if file is not None:
        sha256, size = hash_file(file)
    if sha256 is None or size is None:
        raise RespondError("give --file, or both --sha256 and --size")
    node = open_node(home)
    try:
        case = open_case(node.store, case_id, case_access(node))
        item, event = record_evidence(
            node.store, node.config.home, _keys(node), case, actor=collected_by,
            tlp=parse_tlp(tlp), name=name, sha256=sha256, size=size, kept_at=kept_at,
            collected_by=collected_by, collected_how=how, collected=collected,
            description=description)
    finally:
        node.close()
    if as_json:
        print_json([item, event])
        return
    _say(f"evidence {item['id']} {item['name']} sha256 {item['sha256']} "
         f"({counted(item['size'], 'byte')})")


@evidence_app.command("list")
def evidence_list(case_id: CaseArg, home: HomeOpt = None) -> None:
    """The case's evidence this node's member may read, each with its custody events."""
    from shieldwall.respond.verify import case_custody

    node = open_node(home)
    try:
        evidence, events = case_custody(node.store, case_id, case_access(node))
    finally:
        node.close()
    for oid, versions in sorted(evidence.items(), key=lambda kv: kv[1][-1]["created"]):
        item = versions[-1]
        _say(f"{oid} {item.get('name')} sha256 {item.get('sha256')} kept at "
             f"{item.get('kept_at')}")
        mine = sorted((e for e in events if e.get("evidence_ref") == oid),
                      key=lambda e: (str(e.get("occurred")), str(e.get("created"))))
        for e in mine:
            extra = ", ".join(f"{k} {e[k]}" for k in ("from_holder", "to_holder", "location",
                                                       "tool", "result") if e.get(k))
            _say(f"  {e.get('occurred')} {e.get('custody_action')} by {e.get('actor')}"
                 + (f" ({extra})" if extra else ""))
    if not evidence:
        _say(f"no evidence of case {case_id} this node may read")


# ---- custody ---------------------------------------------------------------------------


def _custody(case_id: str, evidence_id: str, action: str, actor: str, when: str | None,
             home: Path | None, **details: str | None) -> dict[str, Any]:
    from shieldwall.respond.evidence import record_custody

    node = open_node(home)
    try:
        event = record_custody(node.store, node.config.home, _keys(node), case_id,
                               evidence_id, case_access(node), action=action, actor=actor,
                               occurred=when, details=details)
    finally:
        node.close()
    _say(f"custody {event['custody_action']} #{event['chain_seq']} of {evidence_id} by "
         f"{event['actor']} ({event['id']})")
    return event


@custody_app.command("handover")
def custody_handover(case_id: CaseArg, evidence_id: EvidenceArg, actor: Actor,
                     to: Annotated[str, typer.Option("--to", help="Who receives it.")],
                     from_: Annotated[str | None, typer.Option(
                         "--from", help="Who hands it over (default: the actor).")] = None,
                     location: Annotated[str | None, typer.Option("--location")] = None,
                     when: When = None, note: Note = None, home: HomeOpt = None) -> None:
    """Record a hand-over of the evidence from one holder to another."""
    _custody(case_id, evidence_id, "handed-over", actor, when, home, from_holder=from_ or actor,
             to_holder=to, location=location, description=note)


@custody_app.command("copy")
def custody_copy(case_id: CaseArg, evidence_id: EvidenceArg, actor: Actor,
                 location: Annotated[str, typer.Option("--location",
                                                       help="Where the copy is kept.")],
                 copy_ref: Annotated[str | None, typer.Option(
                     "--copy", help="The copy's own evidence item, if recorded.")] = None,
                 when: When = None, note: Note = None, home: HomeOpt = None) -> None:
    """Record a copy of the evidence."""
    _custody(case_id, evidence_id, "copied", actor, when, home, location=location,
             copy_ref=copy_ref, description=note)


@custody_app.command("analysis")
def custody_analysis(case_id: CaseArg, evidence_id: EvidenceArg, actor: Actor,
                     tool: Annotated[str, typer.Option("--tool", help="What was used.")],
                     result: Annotated[str | None, typer.Option("--result")] = None,
                     when: When = None, note: Note = None, home: HomeOpt = None) -> None:
    """Record an analysis of the evidence."""
    _custody(case_id, evidence_id, "analysed", actor, when, home, tool=tool, result=result,
             description=note)


@custody_app.command("reverify")
def custody_reverify(case_id: CaseArg, evidence_id: EvidenceArg, actor: Actor,
                     file: Annotated[Path | None, typer.Option(
                         "--file", help="The file, hashed now.")] = None,
                     sha256: Annotated[str | None, typer.Option(
                         "--sha256", help="Its SHA-256 as computed elsewhere.")] = None,
                     when: When = None, note: Note = None, home: HomeOpt = None) -> None:
    """Hash the evidence again and record whether it still matches (exit 1 when not)."""
    from shieldwall.respond.evidence import hash_file
    from shieldwall.respond.model import RespondError
    from shieldwall.respond.verify import case_custody

    if file is not None:
        sha256 = hash_file(file)[0]
    if not sha256:
        raise RespondError("give --file or --sha256")
    node = open_node(home)
    try:
        evidence, _ = case_custody(node.store, case_id, case_access(node))
    finally:
        node.close()
    item = evidence.get(evidence_id)
    if item is None:
        raise RespondError(f"no evidence {evidence_id} of case {case_id} this node may read")
    match = sha256.strip().lower() == item[-1].get("sha256")
    _custody(case_id, evidence_id, "reverified", actor, when, home,
             observed_sha256=sha256.strip().lower(), result="match" if match else "mismatch",
             description=note)
    if not match:
        console.print(f"the evidence's SHA-256 no longer matches: recorded "
                      f"{item[-1].get('sha256')}, now {sha256}", markup=False)
        raise typer.Exit(1)


# ---- verify ----------------------------------------------------------------------------


@case_app.command("verify")
def verify(case_id: CaseArg, home: HomeOpt = None) -> None:
    """Check every evidence item and custody event of the case this node may read: any
    changed byte, missing event, reordering, replay, or signature by a node that is not
    the one the event names is reported with its reason, and the exit code is 1."""
    from shieldwall.respond.model import RespondError
    from shieldwall.respond.verify import verify_case

    node = open_node(home)
    try:
        access = case_access(node)
        if not case_id.startswith("incident--") or node.store.get(case_id, access) is None:
            raise RespondError(f"no case {case_id} this node may read")
        report = verify_case(node.store, case_id, access,
                             heads_file=node.config.home / HEADS_FILE)
    finally:
        node.close()
    _say(f"case {case_id}: {counted(report.evidence, 'evidence item')}, "
         f"{counted(report.events, 'custody event')} in {counted(report.chains, 'chain')}")
    for f in report.findings:
        _say(f"  {f.kind}: {f.message}")
    if report.ok:
        _say("custody verified: every item and event is as its node signed it")
        return
    _say(f"custody NOT verified: {counted(len(report.findings), 'finding')}")
    raise typer.Exit(1)


# ---- keys ------------------------------------------------------------------------------


@key_app.command("show")
def key_show(home: HomeOpt = None) -> None:
    """This node's key object (JSON, for `case key trust` on a node that cannot receive
    it by federation) and its fingerprint."""
    from shieldwall.keys.signing import fingerprint

    node = open_node(home)
    try:
        keys = _keys(node)
    finally:
        node.close()
    print_json(keys.card())
    console.print(f"fingerprint {fingerprint(keys.signing_public)} ({keys.member})",
                  markup=False)


@key_app.command("trust")
def key_trust(card: Annotated[Path, typer.Argument(help="A key object from `case key show`.")],
              fpr: Annotated[str, typer.Option(
                  "--fingerprint", help="The fingerprint its node's operator read to you.")],
              home: HomeOpt = None) -> None:
    """Store another node's key object, after checking the fingerprint you were given
    out of band (as federation would deliver it)."""
    import orjson

    from shieldwall.keys.signing import fingerprint, keyring
    from shieldwall.respond.kit import KitError
    from shieldwall.store import Provenance

    try:
        obj = orjson.loads(card.read_bytes()[:65536])
    except (OSError, orjson.JSONDecodeError) as exc:
        raise KitError(f"{card}: not a key object ({exc})") from None
    ring = keyring([obj]) if isinstance(obj, dict) else None
    if not ring or not ring.signing:
        raise KitError(f"{card}: not a key object bound to its member")
    if fingerprint(str(obj["signing_key"])) != fpr.strip().lower():
        raise KitError(f"{card}: its fingerprint is {fingerprint(str(obj['signing_key']))}, "
                       f"not {fpr}; not stored")
    node = open_node(home)
    try:
        node.store.put(obj, Provenance(str(obj["member"]), "key-card"))
    finally:
        node.close()
    _say(f"trusted node key {fpr} of {obj['member']}")


# ---- kits ------------------------------------------------------------------------------

_ORIGIN = "kit-origin:"  # kv: the node a case's checkout kit came from


def _recipient(node: Node, member: str, fpr: str | None) -> NodeRef:
    from shieldwall.keys.signing import fingerprint
    from shieldwall.respond.kit import KitError, NodeRef
    from shieldwall.respond.verify import store_keyring

    nodes = store_keyring(node.store).kit_keys(member)
    if fpr:
        nodes = {s: k for s, k in nodes.items() if fingerprint(s) == fpr.strip().lower()}
    if not nodes:
        raise KitError(f"no node key of {member}" + (f" with fingerprint {fpr}" if fpr else "")
                       + " has reached this node (federation, or 'case key trust')")
    if len(nodes) > 1:
        raise KitError(f"{member} has {len(nodes)} nodes; choose one with --node: "
                       + ", ".join(sorted(fingerprint(s) for s in nodes)))
    (signing, kit), = nodes.items()
    return NodeRef(member, signing, kit)


@case_app.command("checkout")
def checkout(case_id: CaseArg,
             to: Annotated[Path, typer.Option("--to", help="The kit file to write (.swk).")],
             member: Annotated[str, typer.Option(
                 "--for", help="The responder's member: the kit holds what it may read.")],
             fpr: Annotated[str | None, typer.Option(
                 "--node", help="Which of its nodes (fingerprint), when it has several.")]
             = None,
             home: HomeOpt = None) -> None:
    """Pack the case slice the responder's member may read into a kit, signed by this
    node and encrypted to the responder's node, for working offline."""
    from shieldwall.policy import Members, PolicyError
    from shieldwall.policy.access import access_for
    from shieldwall.respond.kit import pack, write_kit
    from shieldwall.respond.model import RespondError

    node = open_node(home)
    try:
        try:
            reader = Members(node.store.engine).get(member, required=True)
        except PolicyError as exc:
            raise RespondError(str(exc)) from None
        assert reader is not None
        recipient = _recipient(node, member, fpr)
        data, n = pack(node.store, _keys(node), case_id, access_for(reader), recipient,
                       kind="checkout")
    finally:
        node.close()
    write_kit(to, data)
    _say(f"kit {to}: {counted(n, 'object')} of case {case_id} for {member}, "
         f"{counted(len(data), 'byte')}")


@case_app.command("sync")
def sync(case_id: CaseArg,
         to: Annotated[Path, typer.Option("--to", help="The kit file to write (.swk).")],
         home: HomeOpt = None) -> None:
    """Pack this node's own work on the case (every version of what its member created,
    its custody events and key) into a kit back to the node the case was checked out
    from. Connected, ordinary federation (`shieldwall sync`) carries the same objects."""
    import orjson

    from shieldwall.respond.kit import KitError, NodeRef, pack, write_kit

    node = open_node(home)
    try:
        origin = node.store.kv_get(_ORIGIN + case_id)
        if origin is None:
            raise KitError(f"case {case_id} was not checked in from a kit on this node")
        back = NodeRef(**orjson.loads(origin))
        data, n = pack(node.store, _keys(node), case_id, case_access(node), back,
                       kind="return", created_by=node.member)
    finally:
        node.close()
    write_kit(to, data)
    _say(f"kit {to}: {counted(n, 'object')} of case {case_id} back to {back.member}, "
         f"{counted(len(data), 'byte')}")


def _judge(node: Node, kit: OpenedKit) -> Judge:
    """What a kit may bring in, by the rules a peer's delivery meets (federation's
    `Arrival`): a kit back is its member's own delivery; a checkout kit comes from the
    case's node, trusted as a relay for the case's members (as `--relay-for '*'`), and
    may bring back this member's own items of the case."""
    from shieldwall.config import PeerConfig
    from shieldwall.federation.rules import ANY_MEMBER, Arrival
    from shieldwall.policy import HELD_COLUMNS, Members, held_objects
    from shieldwall.respond.kit import KitError
    from shieldwall.stix.identity import member_identity_id
    from shieldwall.stix.markings import TLP, resolve_tlp

    members = Members(node.store.engine)
    sender, own = kit.sender.member, node.member
    known = members.get(sender)
    if kit.kind == "return" and known is None and sender != own:
        raise KitError(f"the kit comes from {sender}, not a member registered on this node "
                       "('member add'); nothing merged")
    peer = PeerConfig(name=sender, url="kit:", tier=known.tier if known else "ally",
                      relay_for=[ANY_MEMBER] if kit.kind == "checkout" else [])
    names = set(members.names())
    if kit.kind == "checkout":
        # The members the case's objects speak for (its request's requester and cell, the
        # nodes whose keys it carries), which a laptop may never have registered.
        names |= {str(o[p]) for o in kit.objects for p in ("requester", "cell", "member")
                  if isinstance(o.get(p), str)}
    arrival = Arrival.of(own, node.config.tier, peer, names)
    own_id = member_identity_id(own)
    mine_ok = kit.kind == "checkout" or sender == own
    default = node.config.default_tlp_level

    def judge(batch: Any) -> list[str | None]:
        held = held_objects(node.store.rows_by_ids(list({o.get("id") for o in batch}),
                                                   HELD_COLUMNS))
        out_: list[str | None] = []
        for o in batch:
            tlp = resolve_tlp(o, default)
            if mine_ok and o.get("created_by_ref") == own_id:
                out_.append("TLP:RED never leaves its node" if tlp >= TLP.RED else None)
            else:
                out_.append(arrival.refusal(o, tlp, held.get(str(o.get("id")))))
        return out_

    return judge


@case_app.command("checkin")
def checkin(kit_file: Annotated[Path, typer.Argument(help="The kit file (.swk).")],
            trust_signer: Annotated[str | None, typer.Option(
                "--trust-signer", help="Accept a kit signed by a node key this node never "
                "received, after checking its fingerprint with that node's operator.")] = None,
            max_bytes: KitLimit = 256 * 1024 * 1024, home: HomeOpt = None) -> None:
    """Open a kit made for this node and merge it: a checkout kit on a responder's node,
    a kit back on the case's node. Merging is idempotent (every object keeps its id and
    version): again, in any order, or after an interrupted run, nothing is lost or
    duplicated. A kit that is damaged, truncated, too large or made for another node is
    refused in one line, and nothing of it is merged."""
    import orjson

    from shieldwall.respond.kit import merge, open_kit
    from shieldwall.respond.verify import store_keyring, verify_case

    node = open_node(home)
    try:
        keys = _keys(node)
        kit = open_kit(kit_file, keys, store_keyring(node.store), trust_signer=trust_signer,
                       max_bytes=max_bytes)
        result = merge(node.store, kit, _judge(node, kit))
        report = verify_case(node.store, kit.case_id, case_access(node),
                             heads_file=node.config.home / HEADS_FILE)
        if kit.kind == "checkout":
            s = kit.sender
            node.store.kv_set(_ORIGIN + kit.case_id, orjson.dumps(
                {"member": s.member, "signing_key": s.signing_key, "kit_key": s.kit_key}
            ).decode())
    finally:
        node.close()
    p = result.put
    _say(f"merged {kit.kind} kit of case {kit.case_id} from {kit.sender.member}: "
         f"{p.new:,} new, {p.new_versions + p.history:,} new versions, "
         f"{p.duplicates:,} already held, {len(result.refused) + len(p.rejected):,} refused")
    for oid, why in (result.refused + p.rejected)[:10]:
        _say(f"  refused {oid}: {why}")
    _say(f"custody of the case: {counted(report.events, 'event')}, "
         + ("verified" if report.ok else f"NOT verified ({counted(len(report.findings), 'finding')}"
                                         f"; see 'case verify {kit.case_id}')"))


def register(app: typer.Typer) -> None:
    """Nothing to add to the app: the commands join `case`, which case.py registers."""
