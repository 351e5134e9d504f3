"""`shieldwall outputs run|status|test`: alerts to the member's SIEM, syslog and bus."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, counted, open_node, out
from shieldwall.errors import ShieldwallError

if TYPE_CHECKING:
    from shieldwall.node import Node
    from shieldwall.outputs.alerts import Audience, Recommend
    from shieldwall.outputs.runner import Runner
    from shieldwall.store import Store

outputs_app = typer.Typer(help="Alert outputs: webhooks, syslog, NATS (docs/sensors.md).",
                          no_args_is_help=True)


def audiences(node: Node) -> list[Audience]:
    """Each configured output's audience, read with the `Access` TAXII gives that member
    (a member not registered here is read at the node's own tier when it is the node's
    own member, and refused otherwise)."""
    from shieldwall.outputs.alerts import Audience
    from shieldwall.policy import Member, Members, member_identity_id
    from shieldwall.policy.access import access_for

    cfg = node.config
    registry = Members(node.store.engine)
    found: list[Audience] = []
    for t in cfg.outputs.targets:
        if not t.enabled:
            continue
        name = t.audience or cfg.member
        member = registry.get(name)
        if member is None:
            if name != cfg.member:
                raise ShieldwallError(f"output {t.name!r}: audience {name!r} is not a member "
                                      "of this node; add it with 'shieldwall member add'")
            member = Member(name, cfg.tier)
        found.append(Audience(t.name, name, member_identity_id(name), access_for(member),
                              frozenset(t.alerts)))
    return found


def recommender(node: Node, store: Store) -> Recommend:
    """A campaign's consultation level worth an alert (above the lowest), from this node's
    policy read as the output's audience reads it: an audience the policy does not name
    gets none (the policy and what follows from it are for the roles it names), and only
    attributions the audience may read count."""
    from shieldwall.assess.consultation import (
        LEVELS,
        ConsultationError,
        facts_from_store,
        load_policy,
        reader_access,
        recommend,
    )

    def level(row: Any, audience: Audience) -> str | None:
        try:
            policy = load_policy(store, cell=node.config.member,
                                 access=reader_access(audience.member))
            found = recommend(facts_from_store(store, row.id, audience.access), policy).level
        except ConsultationError:
            return None
        return None if found == LEVELS[0] else found

    return level


def build_runner(node: Node, store: Store | None = None) -> Runner:
    """The runner for a node's configured outputs (every sender started: a missing
    secret or certificate fails here, at start)."""
    from shieldwall.outputs.alerts import Router
    from shieldwall.outputs.runner import Runner, make_sender

    store = store or node.store
    cfg = node.config.outputs
    router = Router(store, audiences(node), node_member=node.config.member,
                    recommend=recommender(node, store))
    senders = {t.name: make_sender(t) for t in cfg.targets if t.enabled}
    return Runner(router, cfg.targets, senders, cfg)


@outputs_app.command()
def run(
    home: HomeOpt = None,
    once: Annotated[bool, typer.Option(help="Route and deliver what is due, then exit.")]
    = False,
) -> None:
    """Route new sightings, campaigns and requests to the outbox and deliver them, until
    stopped (Ctrl-C or SIGTERM). Undelivered alerts wait in the store for the next run."""
    import asyncio
    import signal

    from shieldwall.observe.logs import setup
    from shieldwall.store import Store

    node = open_node(home)
    setup(json_logs=node.config.observe.json_logs)
    # Pooled: routing and delivery open a connection several times an alert (~1-3 ms
    # each without a pool on SQLite).
    store = Store.open(node.config.db_url, pooled=True)
    try:
        runner = build_runner(node, store)
        if not runner.targets:
            raise ShieldwallError("no outputs configured: add [[outputs.targets]] to the "
                                  "node's config (docs/sensors.md)")
        if once:
            tallies = asyncio.run(runner.once())
            asyncio.run(runner.close())
            for name, t in tallies.items():
                out.print(f"{name}: {counted(t.delivered, 'alert')} delivered, "
                          f"{t.failed:,} failed{': ' + t.errors[0] if t.errors else ''}",
                          highlight=False, markup=False)
            return

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await runner.run(stop)

        out.print(f"shieldwall: outputs running: {', '.join(t.name for t in runner.targets)}",
                  highlight=False, markup=False)
        asyncio.run(main())
    finally:
        store.close()
        node.close()


@outputs_app.command()
def status(home: HomeOpt = None) -> None:
    """Per output: alerts waiting, delivered, the oldest waiting, the last error."""
    from shieldwall.outputs.outbox import Outbox

    node = open_node(home)
    try:
        rows = {s.output: s for s in Outbox(node.store).status()}
        names = [t.name for t in node.config.outputs.targets] + sorted(
            set(rows) - {t.name for t in node.config.outputs.targets})
        now = time.time()
        for name in names:
            s = rows.get(name)
            if s is None:
                out.print(f"{name}: nothing sent yet", highlight=False, markup=False)
                continue
            oldest = "" if s.oldest_pending_us is None else \
                f", oldest waiting {now - s.oldest_pending_us / 1e6:,.0f} s"
            error = f", last error: {s.last_error}" if s.last_error else ""
            out.print(f"{name}: {s.pending:,} waiting, {s.delivered:,} delivered{oldest}{error}",
                      highlight=False, markup=False)
    finally:
        node.close()


@outputs_app.command()
def test(
    name: Annotated[str, typer.Argument(help="The output to send a test alert to.")],
    home: HomeOpt = None,
) -> None:
    """Send one test alert through the outbox to an output now; exit 1 if it failed."""
    import asyncio
    import uuid

    import orjson

    from shieldwall.outputs.outbox import Pending
    from shieldwall.stix.timestamps import format_ts, now_us

    node = open_node(home)
    try:
        runner = build_runner(node)
        target = next((t for t in runner.targets if t.name == name), None)
        if target is None:
            raise ShieldwallError(f"no enabled output named {name!r} in the config")
        key = "test-" + uuid.uuid4().hex
        body = {"key": key, "kind": "test", "summary": "Shieldwall test alert",
                "node": node.config.member, "audience": target.audience or node.config.member,
                "created": format_ts(now_us()), "object": {}, "related": []}
        runner.outbox.add([Pending(name, key, "test", orjson.dumps(body).decode())])

        async def deliver() -> Any:
            try:
                return await runner.deliver_due(target)
            finally:
                await runner.close()

        tally = asyncio.run(deliver())
        sent = dict(runner.outbox.keys(name)).get(key, False)
    finally:
        node.close()
    if not sent:
        why = tally.errors[0] if tally.errors else "not delivered"
        raise ShieldwallError(f"output {name!r}: the test alert failed: {why} (it stays in "
                              "the outbox and is retried by 'outputs run')")
    out.print(f"{name}: test alert delivered (key {key})", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(outputs_app, name="outputs")
