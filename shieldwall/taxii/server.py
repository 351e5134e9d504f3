"""Running the TAXII server: one uvicorn process on a socket we bind ourselves.

Binding first lets `--port 0` pick a free port and report it on stderr before the
first request, which is how tests and scripts find an ephemeral server.
"""

from __future__ import annotations

import gc
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from shieldwall.errors import ShieldwallError
from shieldwall.store import Store
from shieldwall.taxii.app import Settings, create_app


class ServeError(ShieldwallError):
    """The server cannot start; the message says why."""


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("shieldwall.taxii", "shieldwall.taxii.access", "shieldwall.taxii.auth"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler] if name == "shieldwall.taxii" else []
        logger.setLevel(logging.INFO)
    logging.getLogger("shieldwall.taxii").propagate = False


def _quiet_gc() -> None:
    """Move everything built at start-up (FastAPI, pydantic, the dashboard: hundreds of
    thousands of objects) out of the collector's reach, and collect less often.

    A 5,000-object page allocates ~15,000 tracked objects, so full collections came
    every few pages, each walking the whole start-up heap: 3-4 ms of a page's 18-19 ms
    of server CPU (measured; paging 1M objects went from ~110,000 to ~140,000 a
    second). Nothing built at start-up is garbage, and request objects are freed by
    reference counting: the collector only has cycles left to find.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def serve(
    store: Store,
    settings: Settings,
    *,
    host: str,
    port: int,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_client_ca: str | None = None,
    extend: Callable[[FastAPI], str | None] | None = None,
) -> None:
    """`extend` adds more to the app (the CLI mounts the dashboard there, since TAXII knows
    nothing of the web) and returns the path it serves, announced beside TAXII's.

    `tls_client_ca`: mutual TLS; a client without a certificate that CA signed is refused
    in the handshake, before any request (its member token is still required after)."""
    import ssl

    import uvicorn

    if bool(tls_cert) != bool(tls_key):
        raise ServeError("TLS needs both --tls-cert and --tls-key")
    if tls_client_ca and not tls_cert:
        raise ServeError("client certificates (--tls-client-ca) need --tls-cert and --tls-key")
    for path in (tls_cert, tls_key, tls_client_ca):
        if path and not Path(path).is_file():
            raise ServeError(f"no such file: {path}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly, and TCP_NODELAY: asyncio only disables Nagle on sockets
    # that say they are TCP; without it a keep-alive client waits for a delayed ACK
    # (40 ms) between a response's headers and its body.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    bound = sock.getsockname()[1]
    _logging()
    app = create_app(store, settings)
    extra = extend(app) if extend is not None else None
    config = uvicorn.Config(
        app, log_config=None, access_log=False, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
        ssl_ca_certs=tls_client_ca,
        ssl_cert_reqs=ssl.CERT_REQUIRED if tls_client_ca else ssl.CERT_NONE,
        timeout_keep_alive=30, server_header=False,
    )
    _quiet_gc()
    scheme = "https" if tls_cert else "http"
    print(f"shieldwall: serving TAXII 2.1 on {scheme}://{host}:{bound}/taxii2/",
          file=sys.stderr, flush=True)
    if extra:
        print(f"shieldwall: dashboard on {scheme}://{host}:{bound}{extra}",
              file=sys.stderr, flush=True)
    uvicorn.Server(config).run(sockets=[sock])


__all__ = ["ServeError", "Settings", "serve"]
