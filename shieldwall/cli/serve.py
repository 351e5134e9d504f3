"""`shieldwall serve`: the node's TAXII 2.1 server."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, open_node


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        home: HomeOpt = None,
        host: Annotated[str | None, typer.Option(help="Address (default: config, 127.0.0.1).")]
        = None,
        port: Annotated[int | None, typer.Option(help="Port (default: config; 0 picks one).")]
        = None,
        tls_cert: Annotated[str | None, typer.Option(help="PEM certificate for HTTPS.")] = None,
        tls_key: Annotated[str | None, typer.Option(help="PEM private key for HTTPS.")] = None,
        tls_client_ca: Annotated[
            str | None,
            typer.Option(help="Mutual TLS: require client certificates signed by this CA."),
        ] = None,
        rate_limit: Annotated[
            float, typer.Option(help="Requests a second per member (bursts twice that); 0: off.")
        ] = 200.0,
        federate: Annotated[
            bool, typer.Option(help="Sync with the peers in the config (added ones are picked up).")
        ] = True,
    ) -> None:
        """Serve TAXII 2.1 (discovery at /taxii2/, API docs at /docs, health at /healthz,
        Prometheus metrics at /metrics)."""
        from shieldwall.keys import node_key
        from shieldwall.store import Store
        from shieldwall.taxii.app import Settings
        from shieldwall.taxii.server import serve as run

        node = open_node(home)
        cfg = node.config
        # One key for the cursors TAXII and the dashboard hand out (store/cursors.py): kept
        # in the home, so they survive a restart and every worker of the node opens them.
        cursor_key = node_key(cfg.home, "cursors")
        settings = Settings(
            node_member=cfg.member,
            default_tlp=cfg.default_tlp_level,
            max_content_length=cfg.server.max_content_length,
            max_object_bytes=cfg.server.max_object_bytes,
            allow_anonymous_discovery=cfg.server.allow_anonymous_discovery,
            public_url=cfg.server.public_url,
            rate_limit=rate_limit,
            cursor_key=cursor_key,
        )
        store = Store.open(cfg.db_url, pooled=True)
        from shieldwall.blind.evaluate import endpoint

        settings.blind_evaluate = endpoint(cfg, store)  # allies' blind matching (docs/blind.md)
        if federate:
            from shieldwall.federation import start_in_background

            start_in_background(cfg.home, store)  # pull/push with peers (docs/federation.md)
        import os

        from shieldwall.blind.retro import ArrivedSets
        from shieldwall.cli.blind import senders
        from shieldwall.detect import arrivals

        # New indicators (from peers, imports, published findings) are looked for in the
        # telemetry this node keeps, once each (docs/detection.md, "What arrives"), and so
        # are the allies' blind sets, resolved with their owners (docs/blind.md).
        arrivals.start_in_background(store, cfg.home / "telemetry", member=cfg.member,
                                     identity=node.identity(),
                                     sighting_tlp=cfg.sighting_tlp_level,
                                     blind=ArrivedSets(senders(cfg.home),
                                                       processes=os.cpu_count() or 1,
                                                       spawn=True))
        from shieldwall.cli.case import case_access
        from shieldwall.respond import sharing

        # A dispatch for this member's case widens its items to the team as it arrives
        # (docs/respond.md, "The team gets the case").
        sharing.start_in_background(store, member=cfg.member, access=case_access(node))
        tls = bool(tls_cert or cfg.server.tls_cert)

        def dashboard(app: Any) -> str:
            from shieldwall.observe import logs, metrics
            from shieldwall.policy.access import access_for
            from shieldwall.web import mount

            if cfg.observe.json_logs:  # after the server set up its own log handlers
                logs.setup(json_logs=True)
            # /metrics for the node's operator: loopback or the metrics token (docs/sensors.md)
            metrics.mount(app, metrics.node_metrics(store, cfg.home, node.identity_id),
                          token=metrics.read_token(cfg.observe.metrics_token_file),
                          loopback=cfg.observe.metrics_loopback)
            mount(app, store, access_for, secure=tls, node_member=cfg.member,
                  cursor_key=cursor_key)
            return "/dashboard/"

        run(
            store, settings, extend=dashboard,
            host=host or cfg.server.host,
            port=cfg.server.port if port is None else port,
            tls_cert=tls_cert or cfg.server.tls_cert,
            tls_key=tls_key or cfg.server.tls_key,
            tls_client_ca=tls_client_ca or cfg.server.tls_client_ca,
        )
