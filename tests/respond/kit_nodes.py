"""Nodes for the custody and kit tests: a case's home node and a responder's laptop, each
with its own home and store, and the `shieldwall` command run in-process against them."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from shieldwall.cli.common import console, out
from shieldwall.cli.main import app
from shieldwall.config import init_home
from shieldwall.errors import ShieldwallError
from shieldwall.node import Node
from shieldwall.respond.cases import add_to_case, put_items
from shieldwall.respond.model import Marking, assistance_request, dispatch, link
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.store import Provenance


@dataclass
class Ran:
    code: int
    out: str
    err: str


def sw(home: Path, *args: str) -> Ran:
    """`shieldwall ARGS --home HOME` in this process, as `main()` runs it: a user error is
    one line and exit code 2. The consoles print unwrapped for the call."""
    stdout, stderr = io.StringIO(), io.StringIO()
    widths = out.width, console.width
    out.width = console.width = 10_000
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = app([*args, "--home", str(home)], standalone_mode=False)
        except ShieldwallError as exc:
            print(f"shieldwall: error: {exc}", file=stderr)
            code = 2
        finally:
            out.width, console.width = widths
    return Ran(code if isinstance(code, int) else 0, stdout.getvalue(), stderr.getvalue())


def make_node(home: Path, member: str, url: str | None = None) -> Path:
    cfg = init_home(home, member, **({"database_url": url} if url else {}))
    node = Node(cfg)
    node.store.put(node.identity(), Provenance(member, "local"), default_tlp=TLP.CLEAR)
    node.close()
    return home


def make_case(home: Path, *, cell: str = "cell", team: tuple[str, ...] = ("cert-north:alice",)
              ) -> str:
    """On the requesting member's node: its incident, its request for help and the cell's
    dispatch of `team` (stored here as the cell's node would deliver it)."""
    node = Node.load(home)
    me = node.member
    try:
        audience = Marking(TLP.AMBER_STRICT, tuple(sorted({me, cell, *(t.split(":")[0]
                                                                     for t in team)})))
        ts = "2026-12-01T08:00:00.000Z"
        incident = {"type": "incident", "spec_version": "2.1", "id": new_id("incident"),
                    "created": ts, "modified": ts, "name": "ransomware at srv-07",
                    "created_by_ref": member_identity_id(me), **audience.props()}
        put_items(node.store, me, [incident])
        request = assistance_request(requester=me, cell=cell, incident_id=incident["id"],
                                     needs=["forensics"], marking=audience)
        add_to_case(node.store, me, incident["id"], request)
        sent = dispatch(request=request, cell=cell, team=list(team), lead=team[0],
                        reason="north has the forensics skills")
        node.store.put_many([sent, link(sent, incident["id"])], Provenance(cell, "federation"))
        assert sent["object_marking_refs"] == [tlp_marking_ref(TLP.AMBER_STRICT)]
        return incident["id"]
    finally:
        node.close()
