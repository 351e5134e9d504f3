"""`shieldwall doctor`: is this node well? Config, database, certificates, peers, clocks.

Each check prints one line, `ok`, `warn` or `FAIL`, and says in plain words what is
wrong and what to do; the exit code is 1 when anything failed. Nothing is changed:
the database is opened without migrating, peers are asked for their discovery
document only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, out

if TYPE_CHECKING:
    from shieldwall.config import NodeConfig, PeerConfig

SKEW_WARN = 10.0  # seconds: worth knowing
SKEW_FAIL = 120.0  # seconds: timestamps (added_after, valid_from, sessions) go wrong
EXPIRY_WARN_DAYS = 14


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warn", "FAIL"
    what: str
    message: str


def check_config(home: Path) -> tuple[NodeConfig | None, list[Finding]]:
    from shieldwall.config import CONFIG_NAME, load_config
    from shieldwall.errors import ShieldwallError

    try:
        cfg = load_config(home)
    except ShieldwallError as exc:
        return None, [Finding("FAIL", "config", str(exc))]
    found = [Finding("ok", "config", f"{home / CONFIG_NAME}: member {cfg.member}, "
                     f"{len(cfg.peers)} peer(s), {len(cfg.outputs.targets)} output(s)")]
    from shieldwall.outputs.runner import make_sender

    for target in cfg.outputs.targets:
        if not target.enabled:
            continue
        try:
            make_sender(target)
        except ShieldwallError as exc:
            found.append(Finding("FAIL", f"output {target.name}", str(exc)))
    if cfg.observe.metrics_token_file:
        from shieldwall.observe.metrics import read_token

        try:
            read_token(cfg.observe.metrics_token_file)
        except ShieldwallError as exc:
            found.append(Finding("FAIL", "metrics", str(exc)))
    return cfg, found


def check_database(cfg: NodeConfig) -> list[Finding]:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from shieldwall.store import Store
    from shieldwall.store.migrate import current, script_head

    where = cfg.db_url.split("@")[-1] if "@" in cfg.db_url else cfg.db_url
    try:
        store = Store.open(cfg.db_url, migrate=False)
    except Exception as exc:  # a bad URL, a missing driver
        return [Finding("FAIL", "database", f"cannot open {where}: {exc}")]
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        at, head = current(store.engine), script_head()
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0]
        return [Finding("FAIL", "database", f"cannot reach {where}: {first}")]
    finally:
        store.close()
    if at is None:
        return [Finding("FAIL", "database", f"{where} holds no Shieldwall schema; any "
                        "shieldwall command (e.g. 'shieldwall stats') creates it")]
    if at != head:
        return [Finding("FAIL", "database", f"{where} is at schema revision {at}, this "
                        f"Shieldwall needs {head}: any shieldwall command (e.g. 'shieldwall "
                        "stats') upgrades it in place")]
    return [Finding("ok", "database", f"{where} reachable, schema at revision {at}")]


def check_certificate(what: str, path: str, now: dt.datetime) -> Finding:
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as exc:
        return Finding("FAIL", what, f"cannot read {path}: {exc.strerror}")
    except ValueError:
        return Finding("FAIL", what, f"{path} holds no PEM certificate")
    cert = certs[0]
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    subject = cert.subject.rfc4514_string() or "(no subject)"
    if end < now:
        return Finding("FAIL", what, f"{path} ({subject}) expired on {end:%Y-%m-%d %H:%M} UTC; "
                       "renew it")
    if start > now:
        return Finding("FAIL", what, f"{path} ({subject}) is not valid before "
                       f"{start:%Y-%m-%d %H:%M} UTC (is this machine's clock right?)")
    days = (end - now).days
    if days < EXPIRY_WARN_DAYS:
        return Finding("warn", what, f"{path} ({subject}) expires in {days} day(s), on "
                       f"{end:%Y-%m-%d}; renew it soon")
    return Finding("ok", what, f"{path} valid until {end:%Y-%m-%d}")


def certificates(cfg: NodeConfig) -> list[tuple[str, str]]:
    """(what, path) of every certificate file the config names."""
    files = [("server.tls_cert", cfg.server.tls_cert)]
    for p in cfg.peers:
        files += [(f"peer {p.name} tls_cert", p.tls_cert), (f"peer {p.name} tls_ca", p.tls_ca)]
    for t in cfg.outputs.targets:
        files += [(f"output {t.name} tls_cert", t.tls_cert),
                  (f"output {t.name} tls_ca", t.tls_ca)]
    return [(what, path) for what, path in files if path]


def check_peer(peer: PeerConfig, timeout: float) -> list[Finding]:
    """Ask the peer for its discovery document with our credentials; read its clock."""
    import email.utils
    import ssl

    import httpx

    from shieldwall.errors import ShieldwallError
    from shieldwall.federation.peers import credentials

    what = f"peer {peer.name}"
    try:
        creds = credentials(peer)
        headers, auth = creds.http_auth()
        tls = creds.tls()
    except (ShieldwallError, OSError, ssl.SSLError) as exc:
        return [Finding("FAIL", what, str(exc))]
    url = peer.url.rstrip("/") + "/taxii2/"
    try:
        answer = httpx.get(url, headers={**headers, "Accept": "application/taxii+json;"
                                         "version=2.1"}, auth=auth, verify=tls,
                           timeout=timeout)
    except httpx.ConnectError as exc:
        reason = _tls_reason(exc) or f"cannot connect: {exc}"
        return [Finding("FAIL", what, f"{url}: {reason}")]
    except httpx.TimeoutException:
        return [Finding("FAIL", what, f"{url}: no answer in {timeout:g} s")]
    except httpx.HTTPError as exc:
        return [Finding("FAIL", what, f"{url}: {type(exc).__name__}: {exc}")]
    found: list[Finding] = []
    if answer.status_code in (401, 403):
        found.append(Finding("FAIL", what, f"{url} refused our credentials (HTTP "
                             f"{answer.status_code}): the {peer.auth} secret in "
                             f"{peer.token_file or '(none)'} is wrong, revoked or rotated; "
                             f"ask {peer.name}'s operator for a new one"))
    elif answer.status_code != 200:
        found.append(Finding("FAIL", what, f"{url} answered HTTP {answer.status_code}; is "
                             "this the root of a TAXII 2.1 server?"))
    else:
        found.append(Finding("ok", what, f"{url} reachable, our credentials accepted"))
    date = answer.headers.get("date")
    if date:
        try:
            theirs = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            theirs = None
        if theirs is not None:
            skew = (theirs - dt.datetime.now(dt.UTC)).total_seconds()
            level = "FAIL" if abs(skew) > SKEW_FAIL else "warn" if abs(skew) > SKEW_WARN \
                else "ok"
            ahead = "ahead of" if skew > 0 else "behind"
            found.append(Finding(level, f"clock vs {peer.name}", f"{peer.name}'s clock is "
                                 f"{abs(skew):,.0f} s {ahead} ours" + (
                                     "; fix NTP on whichever is wrong" if level != "ok"
                                     else "")))
    return found


def _tls_reason(exc: BaseException) -> str | None:
    """The TLS verification failure behind a connect error, in words, if that was it."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            detail = text.split("certificate verify failed:")[-1].strip(" ()_")
            return f"its TLS certificate is not accepted: {detail.split(' (_ssl')[0]}"
        seen = seen.__cause__ or seen.__context__
    return None


def diagnose(home: Path, *, timeout: float = 10.0) -> list[Finding]:
    cfg, found = check_config(home)
    if cfg is None:
        return found
    found += check_database(cfg)
    now = dt.datetime.now(dt.UTC)
    found += [check_certificate(what, path, now) for what, path in certificates(cfg)]
    for peer in cfg.peers:
        found += check_peer(peer, timeout)
    return found


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        home: HomeOpt = None,
        timeout: Annotated[float, typer.Option(help="Seconds to wait for each peer.")] = 10.0,
    ) -> None:
        """Check the node's config, database, certificates, peers (reachable, our
        credentials accepted) and clock skew against them; exit 1 if anything is wrong."""
        from shieldwall.config import resolve_home

        found = diagnose(resolve_home(home), timeout=timeout)
        style: dict[str, Any] = {"ok": "green", "warn": "yellow", "FAIL": "bold red"}
        for f in found:
            out.print(f"[{style[f.level]}]{f.level:<4}[/] {f.what}: ", end="")
            out.print(f.message, markup=False, highlight=False)
        failed = sum(f.level == "FAIL" for f in found)
        if failed:
            out.print(f"{failed} problem(s) found", highlight=False)
            raise typer.Exit(1)
