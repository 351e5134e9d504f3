"""`shieldwall demo`: an alliance of four nodes and a WannaCry-like outbreak (`make demo`).

Three member nodes (cert-north, cert-south, cert-east) and the coordination cell's node run
as separate `shieldwall serve` processes on 127.0.0.1, each with its own SQLite home,
registered with each other as members and peers. cert-north publishes real public
WannaCry indicators (TLP:GREEN, shieldwall/data/demo/wannacry.json); cert-south's Zeek
sensor saw SMB scanning on 445/tcp, the kill-switch lookup and the worm's file; cert-east's
saw the kill-switch lookup. Each hunts its logs, records sightings, and federation carries
them to every node: the alliance view shows two members hit. Then the cell assesses, a
rapid reaction team responds (demo_respond.py), a TLP:RED indicator of cert-north protects
cert-east without cert-east learning it (demo_blind.py), and webhook outputs deliver the
alerts to a receiver inside the demo (demo_outputs.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from shieldwall.cli.common import console, counted, out

DATA = Path(__file__).resolve().parent.parent / "data" / "demo"
MEMBERS = ("cert-north", "cert-south", "cert-east")
COORDINATION = "coordination"
NODES = (*MEMBERS, COORDINATION)
WAIT = 30.0  # seconds to wait for any one propagation before calling the demo failed


@dataclass
class _Node:
    name: str
    home: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    analyst_token: str = ""
    web_password: str = ""
    store: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, who: str, what: str) -> None:
        console.print(f"[dim]+{time.monotonic() - self.t0:6.2f}s[/] [bold cyan]{who:<13}[/] {what}")


# ---- setting the alliance up ----------------------------------------------------------------


def _setup(root: Path) -> list[_Node]:
    from shieldwall.config import CONFIG_NAME, init_home, load_config
    from shieldwall.node import Node
    from shieldwall.policy import Members, PolicyError
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Provenance

    nodes = [_Node(n, root / n) for n in NODES]
    for n in nodes:
        cfg = load_config(n.home) if (n.home / CONFIG_NAME).exists() else init_home(
            n.home, n.name, tier="ally")
        node = Node(cfg)
        n.store = node.store
        n.store.put(node.identity(), Provenance(n.name, "local"), default_tlp=TLP.CLEAR)
        reg = Members(n.store.engine)
        for who in [*(m.name for m in nodes if m is not n), "analyst"]:
            try:
                token = reg.add(who, "ally")
            except PolicyError:  # a kept home (--home): issue a fresh token
                token = reg.rotate(who)
            if who == "analyst":
                n.analyst_token = token
            else:
                tokens = root / who / "tokens"
                tokens.mkdir(parents=True, exist_ok=True)
                path = tokens / f"at-{n.name}"
                path.write_text(token + "\n")
                path.chmod(0o600)
        n.web_password = _dashboard_user(node, n.name)
    return nodes


def _dashboard_user(node: Any, member: str) -> str:
    """A dashboard user per node when the dashboard exists (shieldwall/web)."""
    try:
        from shieldwall.web.users import Users, create_user
    except ImportError:
        return ""
    from shieldwall.policy import Members, PolicyError

    role = "coordinator" if member == COORDINATION else "analyst"
    # The node's own people sign in as its own member, which the node must know.
    with contextlib.suppress(PolicyError):  # already registered in a kept home
        Members(node.store.engine).add(member, "ally")
    with contextlib.suppress(Exception):  # absent on a fresh home
        Users(node.store.engine).remove("analyst")
    try:
        return create_user(node, "analyst", member, role)
    except Exception:  # the dashboard's own rules; the demo goes on without it
        return ""


# `shieldwall serve`, with only the serve command registered: the full CLI imports every
# room (the STIX validator alone costs ~5 s of CPU at import), four times over on a 2-core box.
_SERVE = (
    "import sys, typer\n"
    "from shieldwall.cli import serve\n"
    "app = typer.Typer(add_completion=False)\n"
    "app.callback()(lambda: None)\n"
    "serve.register(app)\n"
    "app(sys.argv[1:], prog_name='shieldwall')\n"
)


def _start(nodes: list[_Node]) -> None:
    env = os.environ | {"SHIELDWALL_SYNC_INTERVAL": "2"}
    for n in nodes:
        log = open(n.home / "serve.log", "wb")  # noqa: SIM115 - the process owns it
        n.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, "serve", "--home", str(n.home), "--port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    deadline = time.monotonic() + 90
    import re

    while any(not n.url for n in nodes):
        for n in nodes:
            if n.url:
                continue
            text = (n.home / "serve.log").read_text(errors="replace")
            m = re.search(r"serving TAXII 2\.1 on (https?://[\d.]+:\d+)/", text)
            if m:
                n.url = m.group(1)
            elif (n.proc and n.proc.poll() is not None) or time.monotonic() > deadline:
                _stop(nodes)
                from shieldwall.errors import ShieldwallError

                raise ShieldwallError(f"node {n.name} did not start; see {n.home}/serve.log")
        time.sleep(0.1)


def _peer_up(nodes: list[_Node]) -> None:
    from shieldwall.config import load_config
    from shieldwall.federation import add_peer

    for n in nodes:
        cfg = load_config(n.home)
        for other in nodes:
            if other is not n:
                add_peer(cfg, other.name, other.url, n.home / "tokens" / f"at-{other.name}",
                         tier="ally", replace=True)


def _stop(nodes: list[_Node]) -> None:
    for n in nodes:
        if n.proc and n.proc.poll() is None:
            n.proc.send_signal(signal.SIGTERM)
    for n in nodes:
        if n.proc:
            try:
                n.proc.wait(10)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(10)
        if n.store is not None:
            n.store.close()


# ---- the scenario ----------------------------------------------------------------------------


def _wait_everywhere(nodes: list[_Node], ids: list[str], tl: _Timeline, what: str) -> bool:
    from shieldwall.store import Query

    pending = {n.name: n for n in nodes}
    deadline = time.monotonic() + WAIT
    while pending and time.monotonic() < deadline:
        for name, n in list(pending.items()):
            if len(n.store.query(Query(ids=ids)).rows) == len(ids):
                row = n.store.get(ids[0])
                tl(name, f"has {what} (delivered by {row.source if row else '?'})")
                del pending[name]
        time.sleep(0.05)
    for name in pending:
        tl(name, f"[red]did not receive {what} within {WAIT:.0f}s[/]")
    return not pending


def _hunt(n: _Node, logs: Path) -> tuple[int, list[dict[str, Any]]]:
    """What `shieldwall hunt` does, in process: index, read, match, record sightings."""
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.retro import TelemetryStore
    from shieldwall.detect.sightings import Sightings
    from shieldwall.node import member_identity, member_identity_id
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Provenance
    from shieldwall.store.audience import stored_marking

    index = IndicatorIndex()
    index.sync(n.store)
    sightings = Sightings(member_identity_id(n.name), TLP.AMBER,
                          marking_of=stored_marking(n.store), member=n.name)
    # The telemetry is kept, as `shieldwall hunt` keeps it: indicators shared later are
    # looked for in it (the rapid-reaction act).
    hunter = Hunter(index, sightings, TelemetryStore(n.home / "telemetry").write)
    hunter.run([logs])
    objs = hunter.objects()
    n.store.put_many([member_identity(n.name), *objs], Provenance(n.name, "detect"),
                     default_tlp=TLP.AMBER)
    return hunter.sightings.hits, [o for o in objs if o["type"] == "sighting"]


def _play(nodes: list[_Node], tl: _Timeline) -> tuple[list[Any], bool]:
    import orjson

    from shieldwall.federation import alliance_view
    from shieldwall.store import Provenance

    by = {n.name: n for n in nodes}
    north, south, east, coord = (by[x] for x in NODES)
    bundle = orjson.loads((DATA / "wannacry.json").read_bytes())
    objs = bundle["objects"]
    indicators = [o for o in objs if o["type"] == "indicator"]
    north.store.put_many(objs, Provenance(north.name, "import"))
    tl(north.name, f"publishes {len(indicators)} WannaCry indicators (TLP:GREEN): kill-switch "
       "domains, worm and encryptor SHA-256")
    _wait_everywhere([south, east, coord], [o["id"] for o in indicators], tl,
                     "the WannaCry indicators")

    now = time.time()
    south_logs = _zeek_logs(south.home / "zeek", now - 120, victim="10.20.4.17",
                            scan=True, files=True, beacons=5)
    tl(south.name, f"Zeek sensor: {south_logs} SMB connections to 445/tcp from 10.20.4.17 "
       "(a scan), a kill-switch lookup, the worm's file")
    hits, found = _hunt(south, south.home / "zeek")
    south_found = found
    tl(south.name, f"hunts its Zeek logs: {counted(hits, 'hit')}, "
       f"{counted(len(found), 'sighting')} recorded")
    _wait_everywhere([north, east, coord], [s["id"] for s in found], tl,
                     f"{south.name}'s sightings")

    east_logs = _zeek_logs(east.home / "zeek", now - 60, victim="172.16.9.23",
                           scan=False, files=False, beacons=1)
    tl(east.name, f"Zeek sensor: the kill-switch lookup from 172.16.9.23 ({east_logs} SMB "
       "connections)")
    hits, found = _hunt(east, east.home / "zeek")
    tl(east.name, f"hunts its Zeek logs: {counted(hits, 'hit')}, "
       f"{counted(len(found), 'sighting')} recorded")
    _wait_everywhere([north, south, coord], [s["id"] for s in found], tl,
                     f"{east.name}'s sightings")
    incident, campaign = _assess(south, east, coord, south_found, found, tl)
    from shieldwall.cli.demo_respond import play

    responded = incident is not None and play(nodes, incident, campaign, tl)
    from shieldwall.cli.demo_blind import play as play_blind

    blind = play_blind(nodes, tl)  # a RED indicator of cert-north protects cert-east
    return alliance_view(coord.store, NODES), responded and blind


# Techniques each victim's responders report: ATT&CK's own profile of WannaCry (S0366).
_INCIDENTS = {
    "health": ["T1210", "T1486", "T1490", "T1570", "T1543.003"],
    "energy": ["T1210", "T1018", "T1016", "T1486"],
}


def _assess(south: _Node, east: _Node, coord: _Node, south_found: list[dict[str, Any]],
            east_found: list[dict[str, Any]], tl: _Timeline) -> tuple[str | None, str | None]:
    """The coordination cell's judgement: incidents, a campaign, severity, attribution, and a
    consultation recommendation that waits for a named person's decision. Returns cert-
    south's incident and the campaign (None when a step failed)."""
    from dataclasses import replace

    from shieldwall.assess.attribution import attribute, attributed_to, ranking_note
    from shieldwall.assess.consultation import (
        DEFAULT_POLICY,
        facts_from_store,
        load_policy,
        reader_access,
        recommend,
        status_of,
        store_policy,
    )
    from shieldwall.assess.correlation import Correlator, publish_campaigns
    from shieldwall.assess.incidents import IncidentFields, open_incident
    from shieldwall.node import member_identity_id
    from shieldwall.store import Provenance

    incidents = []
    for n, found, sector in ((south, south_found, "health"), (east, east_found, "energy")):
        inc = open_incident(n.store, n.name, member_identity_id(n.name), IncidentFields(
            name=f"WannaCry-like ransomware outbreak at {n.name}", sector=sector,
            determination="successful-attempt", investigation_status="open",
            recoverability="supplemented", criticality=80,
            incident_types=["ransomware"], techniques=_INCIDENTS[sector],
            sighting_refs=[s["id"] for s in found]))
        incidents.append(inc["id"])
        tl(n.name, f"opens an incident ({sector} sector, "
           f"{len(_INCIDENTS[sector])} ATT&CK techniques observed)")
    _wait_everywhere([coord], incidents, tl, "both incidents")

    store_policy(coord.store, replace(DEFAULT_POLICY, readers=(coord.name,)), cell=coord.name,
                 created_by_ref=member_identity_id(coord.name))
    corr = Correlator(coord.store)
    corr.update_from_store()
    campaigns = [c for c in publish_campaigns(coord.store, corr, member=coord.name,
                                              created_by_ref=member_identity_id(coord.name))
                 if len(c.get("x_shieldwall_members", [])) >= 2]
    if not campaigns:
        tl(coord.name, "[red]correlation found no campaign across members[/]")
        return incidents[0], None
    camp = campaigns[0]
    sev = camp["x_shieldwall_severity"]
    tl(coord.name, f"correlates a candidate campaign across "
       f"{', '.join(camp['x_shieldwall_members'])}: severity {sev['score']} ({sev['level']})")
    techniques = sorted({t for ts in _INCIDENTS.values() for t in ts})
    ranking = attribute(techniques=techniques, software=["S0366"])
    cell = member_identity_id(coord.name)
    coord.store.put_many([*attributed_to(ranking, camp["id"], created_by_ref=cell),
                          ranking_note(ranking, camp["id"], created_by_ref=cell)],
                         Provenance(coord.name, "local"))
    best = ranking.candidates[0] if ranking.candidates else None
    lead = (f"{best.group} ({best.attack_id}), confidence {best.confidence:.2f}" if best
            else "none")
    tl(coord.name, f"attribution: {ranking.verdict}; leading candidate {lead}")
    policy = load_policy(coord.store, cell=coord.name, access=reader_access(coord.name))
    rec = recommend(facts_from_store(coord.store, camp["id"]), policy)
    tl(coord.name, f"consultation policy recommends [bold]{rec.level}[/]: "
       f"{status_of(coord.store, camp['id'])} (shieldwall consult show {camp['id']})")
    return incidents[0], camp["id"]


# ---- Zeek logs in Zeek's own TSV format --------------------------------------------------------

_KILL_SWITCH = "iuqerfsodp9ifjaposdfjhgosurijfaewrwergwea.com"
_WORM_SHA256 = "ed01ebfbc9eb5bbea545af4d01bf5f1071661840480439c6e5babe8e080e41aa"
_WORM_MD5 = "db349b97c37d22f5ea1d1841e3c89eb4"

_HEAD = {
    "conn": ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
             "resp_bytes conn_state local_orig missed_bytes history orig_pkts orig_ip_bytes "
             "resp_pkts resp_ip_bytes tunnel_parents",
             "time string addr port addr port enum string interval count count string bool "
             "count string count count count count table[string]"),
    "dns": ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id query qclass "
            "qclass_name qtype qtype_name rcode rcode_name AA TC RD RA Z answers TTLs rejected",
            "time string addr port addr port enum count string count string count string count "
            "string bool bool bool bool count vector[string] vector[interval] bool"),
    "files": ("ts fuid tx_hosts rx_hosts conn_uids source depth analyzers mime_type filename "
              "duration local_orig is_orig seen_bytes total_bytes missing_bytes overflow_bytes "
              "timedout parent_fuid md5 sha1 sha256 extracted",
              "time string table[addr] table[addr] table[string] string count table[string] "
              "string string interval bool bool count count count count bool string string "
              "string string string"),
}


def _write_log(path: Path, kind: str, rows: list[list[str]], opened: float) -> None:
    fields, types = _HEAD[kind]
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(opened))
    lines = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)",
             "#unset_field\t-", f"#path\t{kind}", f"#open\t{stamp}",
             "#fields\t" + "\t".join(fields.split()), "#types\t" + "\t".join(types.split())]
    lines += ["\t".join(r) for r in rows]
    lines.append(f"#close\t{time.strftime('%Y-%m-%d-%H-%M-%S', time.gmtime(opened + 60))}")
    path.write_text("\n".join(lines) + "\n")


def _uid(i: int, prefix: str = "C") -> str:
    import hashlib

    return prefix + hashlib.sha1(str(i).encode()).hexdigest()[:17]


def _zeek_logs(folder: Path, t0: float, *, victim: str, scan: bool, files: bool,
               beacons: int = 0) -> int:
    """conn.log (SMB scanning on 445/tcp when `scan`; `beacons` connections a minute apart
    to the command-and-control address no feed knows yet), dns.log (the kill-switch lookup
    among ordinary ones), files.log (the worm's binary over SMB when `files`). Returns the
    number of 445/tcp connections."""
    from shieldwall.cli.demo_respond import C2

    folder.mkdir(parents=True, exist_ok=True)
    net = victim.rsplit(".", 1)[0]
    conn: list[list[str]] = []
    smb = 0
    for i in range(1, 61 if scan else 3):
        target = f"{net}.{i}"
        if target == victim:
            continue
        ok = i % 7 == 0
        conn.append([f"{t0 + i * 0.05:.6f}", _uid(i), victim, str(49152 + i), target, "445",
                     "tcp", "smb" if ok else "-", "0.512000" if ok else "-",
                     "1260" if ok else "0", "784" if ok else "0", "SF" if ok else "S0", "T",
                     "0", "ShADadFf" if ok else "S", "9" if ok else "1", "1632" if ok else "60",
                     "7" if ok else "0", "1064" if ok else "0", "(empty)"])
        smb += 1
    conn.append([f"{t0 - 1:.6f}", _uid(900), victim, "51234", f"{net}.1", "53", "udp", "dns",
                 "0.021000", "63", "79", "SF", "T", "0", "Dd", "1", "91", "1", "107",
                 "(empty)"])
    for k in range(beacons):
        conn.append([f"{t0 - 600 + 60 * k:.6f}", _uid(800 + k), victim, str(50100 + k), C2,
                     "443", "tcp", "ssl", "0.320000", "517", "1042", "SF", "T", "0",
                     "ShADadFf", "8", "937", "6", "1362", "(empty)"])
    _write_log(folder / "conn.log", "conn", conn, t0)
    dns = [
        [f"{t0 - 5:.6f}", _uid(901), victim, "51230", f"{net}.1", "53", "udp", "4114",
         "time.windows.com", "1", "C_INTERNET", "1", "A", "0", "NOERROR", "F", "F", "T", "T",
         "0", "168.61.215.74", "900.000000", "F"],
        [f"{t0 - 1:.6f}", _uid(900), victim, "51234", f"{net}.1", "53", "udp", "28305",
         _KILL_SWITCH, "1", "C_INTERNET", "1", "A", "0", "NOERROR", "F", "F", "T", "T", "0",
         "104.16.173.80,104.16.174.80", "300.000000,300.000000", "F"],
    ]
    _write_log(folder / "dns.log", "dns", dns, t0)
    rows: list[list[str]] = []
    if files:
        rows.append([f"{t0 + 4:.6f}", _uid(902, "F"), f"{net}.5", victim, _uid(5), "SMB", "0",
                     "MD5,SHA1,SHA256,PE", "application/x-dosexec", "mssecsvc.exe", "0.118000",
                     "T", "F", "3723264", "3723264", "0", "0", "F", "-", _WORM_MD5,
                     "-", _WORM_SHA256, "-"])
    _write_log(folder / "files.log", "files", rows, t0)
    return smb


# ---- the command -----------------------------------------------------------------------------


def _where(nodes: list[_Node], keep: Path | None) -> None:
    out.print("[bold]Where to look[/] (TAXII 2.1: HTTP Basic user 'analyst', password = token)")
    for n in nodes:
        out.print(f"  [bold]{n.name}[/]: {n.url}/taxii2/  token {n.analyst_token}")
        if n.web_password:
            out.print(f"    dashboard {n.url}/dashboard/  user analyst  password "
                      f"{n.web_password}")
    n = nodes[-1]
    out.print(f"  e.g. curl -u analyst:{n.analyst_token} -H 'Accept: application/taxii+json;"
              f"version=2.1' '{n.url}/api/collections/alliance/objects/?match[type]=sighting'",
              markup=False)
    if keep:
        out.print(f"  homes: {keep}/<node>; try: shieldwall alliance --home {keep}/coordination; "
                  f"shieldwall peer list --home {keep}/cert-south")


def demo(
    home: Annotated[Path | None, typer.Option("--home", help="Keep the nodes' homes here.")]
    = None,
    once: Annotated[bool, typer.Option("--once", help="Play, print the outcome, exit.")] = False,
) -> None:
    """An alliance of four nodes on 127.0.0.1 and a WannaCry-like outbreak, end to end."""
    from shieldwall.cli.peers import render_alliance
    from shieldwall.federation import members_hit

    root = home.resolve() if home else Path(tempfile.mkdtemp(prefix="shieldwall-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    tl = _Timeline()
    console.print(f"[bold]Shieldwall demo[/]: an alliance of {len(NODES)} nodes at {root}")
    nodes = _setup(root)
    tl("alliance", "members registered on every node; tokens exchanged")
    ok = False
    try:
        _start(nodes)
        for n in nodes:
            tl(n.name, f"serving TAXII 2.1 at {n.url}/taxii2/")
        _peer_up(nodes)
        tl("alliance", "every node peers with every other (push on record, background "
                       "pulls paced one peer a second)")
        from shieldwall.cli.demo_outputs import webhook_outputs

        with webhook_outputs(nodes, tl):  # one line per output, once the acts are done
            view, responded = _play(nodes, tl)
        out.print()
        render_alliance(view)
        hit = {m for ms in members_hit(view).values() for m in ms}
        ok = len(hit) >= 2 and responded
        msg = (f"{counted(len(hit), 'member')} hit: {', '.join(sorted(hit))}; every node "
               "knows it; the team's finding protected cert-east" if ok else
               f"[red]{counted(len(hit), 'member')} hit: {', '.join(sorted(hit))}"
               f"{'' if responded else '; the rapid-reaction or blind act did not complete'}"
               "[/]")
        out.print(f"[bold]Outcome:[/] {msg}")
        if once:
            out.print("The nodes stop now. To sign in to their dashboards and query their "
                      "TAXII servers, keep them running: [bold]shieldwall demo[/] (Ctrl-C "
                      "stops it), or [bold]shieldwall demo --home DIR[/] to keep their homes.")
            if home:
                out.print(f"  homes kept: {root}/<node>; try: shieldwall alliance --home "
                          f"{root}/coordination")
        else:
            _where(nodes, root)
            out.print("[bold]The alliance is running.[/] Ctrl-C stops it.")
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
            try:
                while all(n.proc and n.proc.poll() is None for n in nodes):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                console.print("stopping the nodes")
    finally:
        _stop(nodes)
        if once and home is None:
            shutil.rmtree(root, ignore_errors=True)
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(demo)
