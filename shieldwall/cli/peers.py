"""`shieldwall peer ...` (the nodes this one syncs with) and `shieldwall alliance` (who saw
which shared indicator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, open_node, out

peer_app = typer.Typer(help="Peers: other members' nodes this node syncs with.",
                       no_args_is_help=True)


@peer_app.command("add")
def add(
    name: str = typer.Argument(help="The peer's member name (as it runs and as it is "
                               "registered here)."),
    url: str = typer.Argument(help="The peer's TAXII server root, e.g. https://host:8021/"),
    token_file: Annotated[Path, typer.Option(
        "--token-file", "--secret-file",
        help="File holding the secret the peer issued to this node: the bearer token, the "
             "Basic password or the API key (chmod 600; only its path is kept in the "
             "config).")] = Path("token"),
    auth: Annotated[str, typer.Option(help="bearer (Shieldwall nodes), basic (--user and "
                                      "the password in --secret-file; medallion), api-key "
                                      "(--api-key-header), or none (e.g. a TLS client "
                                      "certificate alone).")] = "bearer",
    user: Annotated[str | None, typer.Option(help="The user name, for --auth basic.")] = None,
    api_key_header: Annotated[str | None, typer.Option(
        help="The header carrying the key, for --auth api-key (e.g. X-API-Key).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        help="A TLS client certificate (PEM) to present to the peer.")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        help="Its private key (PEM), unless in the certificate's file.")] = None,
    tls_ca: Annotated[Path | None, typer.Option(
        help="The CA file the peer's certificate is checked against (default: the "
             "system's).")] = None,
    tier: Annotated[str, typer.Option(help="ally, partner or organisation: what it may "
                                      "receive from us.")] = "ally",
    pull: Annotated[list[str] | None, typer.Option(help="Collection to pull (repeat); "
                                                   "default: alliance.")] = None,
    push: Annotated[list[str] | None, typer.Option(help="Collection to push to (repeat); "
                                                   "default: the writable ones.")] = None,
    replace: Annotated[bool, typer.Option(help="Update an existing peer.")] = False,
    relay_for: Annotated[list[str] | None, typer.Option(
        help="A member whose objects this peer may relay to us (repeat; * for all, e.g. a "
             "coordination hub). Default: none, only the peer's own claims.")] = None,
    home: HomeOpt = None,
) -> None:
    """Add a peer to this node's config (a running `serve` picks it up within seconds)."""
    from shieldwall.federation import add_peer

    peer = add_peer(open_node(home).config, name, url, token_file, tier=tier, pull=pull,
                    push=push, replace=replace, relay_for=relay_for, auth=auth, user=user,
                    api_key_header=api_key_header, tls_cert=tls_cert, tls_key=tls_key,
                    tls_ca=tls_ca)
    relays = f"; relays for {', '.join(peer.relay_for)}" if peer.relay_for else ""
    out.print(f"peer {peer.name} ({peer.tier}) at {peer.url}, auth {_auth(peer)}: "
              f"pull {', '.join(peer.pull)}{relays}", markup=False)
    for secret in (peer.token_file, peer.tls_key):
        if secret and Path(secret).stat().st_mode & 0o077:
            out.print(f"warning: {secret} is readable by others than its owner: "
                      f"chmod 600 {secret}", markup=False)


def _auth(peer: Any) -> str:
    """How the node authenticates to `peer`, without its secret."""
    how = {"basic": f"basic ({peer.user})",
           "api-key": f"api-key ({peer.api_key_header})"}.get(peer.auth, peer.auth)
    return f"{how} + client certificate" if peer.tls_cert else how


@peer_app.command("collections")
def collections(name: str, home: HomeOpt = None) -> None:
    """The collections the peer lists (from its discovery document's API root): choose
    what to pull and push to by id or title (`peer add ... --pull ID --push TITLE`)."""
    from rich.table import Table

    from shieldwall.federation import Federation, PeerError

    node = open_node(home)
    fed = Federation(node.config.home, node.store)
    try:
        found = fed.peers([name])
        if not found:
            raise PeerError(f"no peer named {name!r}; see 'shieldwall peer list'")
        client = fed.client(found[0])
        table = Table("id", "title", "alias", "can_read", "can_write",
                      title=f"{name}: {client.api_root()}")
        for c in client.collections():
            table.add_row(str(c.get("id", "")), str(c.get("title", "")),
                          str(c.get("alias", "") or ""), str(bool(c.get("can_read"))),
                          str(bool(c.get("can_write"))))
        out.print(table)
    finally:
        fed.close()


@peer_app.command("remove")
def remove(name: str, home: HomeOpt = None) -> None:
    """Remove a peer from this node's config."""
    from shieldwall.federation import remove_peer

    remove_peer(open_node(home).config, name)


@peer_app.command("list")
def list_(home: HomeOpt = None) -> None:
    """Peers with their sync state: last success, lag, objects moved, objects of ours the
    peer refused, objects of the peer's this node rejected (forged or not ours to hold), and
    the last error."""
    from rich.table import Table

    from shieldwall.federation import load_state
    from shieldwall.stix.timestamps import format_ts, now_us

    node = open_node(home)
    table = Table("peer", "tier", "url", "last success", "lag", "pulled", "pushed",
                  "refused", "rejected", "error")
    now = now_us()
    for p in node.config.peers:
        st = load_state(node.store, p.name)
        lag = f"{(now - st.last_success_us) / 1e6:,.0f}s" if st.last_success_us else "never"
        error = st.last_error if st.last_error_us > st.last_success_us else ""
        if not error and st.cursor_note:
            error = st.cursor_note
        if not error and st.last_rejection:
            error = f"rejected: {st.last_rejection}"
        if not error and st.last_refusal:
            error = f"refused: {st.last_refusal}"
        table.add_row(p.name, p.tier, p.url,
                      format_ts(st.last_success_us) if st.last_success_us else "never",
                      lag, f"{st.pulled:,}", f"{st.pushed:,}", f"{st.refused:,}",
                      f"{st.rejected:,}", f"[red]{error}[/]" if error else "")
    out.print(table)


def alliance(
    home: HomeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The alliance view: which members sighted which shared indicator, when."""
    from shieldwall.federation import alliance_view
    from shieldwall.policy import Members

    node = open_node(home)
    names = {node.member, *(p.name for p in node.config.peers),
             *Members(node.store.engine).names()}
    render_alliance(alliance_view(node.store, names), as_json)


def render_alliance(view: list, as_json: bool = False) -> None:  # type: ignore[type-arg]
    from rich.table import Table

    from shieldwall.stix.timestamps import format_ts

    if as_json:
        import orjson

        for h in view:
            print(orjson.dumps(h.__dict__).decode())
        return
    table = Table("indicator", "member", "first seen", "hits", "via",
                  title="Alliance view: who sighted which shared indicator")
    for h in view:
        table.add_row(h.indicator[:48], h.member, format_ts(h.first_seen_us)[:19],
                      f"{h.count:,}", h.via)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(peer_app, name="peer")
    app.command("alliance")(alliance)
