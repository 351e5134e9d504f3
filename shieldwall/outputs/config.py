"""The `[outputs]` section of a node's config: where alerts go, and for whom.

```toml
[[outputs.targets]]
name = "soc-siem"                 # names its rows in the outbox; keep it once chosen
type = "webhook"                  # webhook, syslog or nats
url = "https://siem.example/hooks/shieldwall"
secret_file = "/etc/shieldwall/siem.secret"   # HMAC-SHA256 key (webhook)
audience = "cert-a"               # the member whose Access every alert passes
alerts = ["sighting", "sighting-elsewhere", "campaign"]
```

Every target is checked when the config is read, so a bad URL or an unknown type stops
`shieldwall outputs run` and the node at start with one line naming the target.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

OUTPUT_TYPES = ("webhook", "syslog", "nats")
# sighting: a new sighting at the audience member; sighting-elsewhere: another member's
# sighting of the audience member's indicators; campaign: a campaign naming the member;
# consultation: a campaign's consultation recommendation (for the cell); assistance-
# request: a member asks for help (for the cell).
ALERT_KINDS = ("sighting", "sighting-elsewhere", "campaign", "consultation",
               "assistance-request")
DEFAULT_ALERTS = ("sighting", "sighting-elsewhere", "campaign")
_SCHEMES = {
    "webhook": ("http", "https"),
    "syslog": ("udp", "tcp", "tls"),
    "nats": ("nats", "tls"),
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class TargetConfig(BaseModel):
    """One output. Secrets live in files (`secret_file`), never in the config."""

    name: str
    type: str
    url: str
    # The member the alerts are for: each passes the TAXII Access of this member
    # (unset: this node's own member).
    audience: str | None = None
    alerts: list[str] = Field(default_factory=lambda: list(DEFAULT_ALERTS))
    secret_file: str | None = None  # webhook: the HMAC-SHA256 key
    format: str = "json"  # syslog: json or cef
    subject: str = "shieldwall.alerts"  # nats: the subject alerts are published on
    timeout: float = 10.0  # seconds for one delivery, connection to answer
    concurrency: int = 8  # deliveries in flight
    tls_ca: str | None = None  # the CA that signed the receiver's certificate
    tls_cert: str | None = None  # a client certificate (PEM), with tls_key
    tls_key: str | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        where = f"output {self.name!r}"
        if not _NAME_RE.match(self.name):
            raise ValueError(f"{where}: a name is letters, digits, '.', '_' or '-'")
        if self.type not in OUTPUT_TYPES:
            raise ValueError(f"{where}: unknown type {self.type!r}; one of "
                             f"{', '.join(OUTPUT_TYPES)}")
        parts = urlsplit(self.url)
        schemes = _SCHEMES[self.type]
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in schemes or not parts.hostname or port == -1 or (
                self.type != "webhook" and port is None):
            example = {"webhook": "https://siem.example/hook",
                       "syslog": "tcp://siem.example:6514",
                       "nats": "nats://127.0.0.1:4222"}[self.type]
            raise ValueError(f"{where}: bad url {self.url!r}; a {self.type} url is like "
                             f"{example} ({' or '.join(schemes)})")
        unknown = sorted(set(self.alerts) - set(ALERT_KINDS))
        if unknown:
            raise ValueError(f"{where}: unknown alerts {unknown}; one of "
                             f"{', '.join(ALERT_KINDS)}")
        if self.type == "webhook" and not self.secret_file:
            raise ValueError(f"{where}: a webhook needs secret_file (its HMAC key)")
        if self.format not in ("json", "cef"):
            raise ValueError(f"{where}: format is json or cef, not {self.format!r}")
        if not 0 < self.timeout <= 300 or not 1 <= self.concurrency <= 256:
            raise ValueError(f"{where}: timeout is 0-300 s, concurrency 1-256")
        return self


class OutputsConfig(BaseModel):
    targets: list[TargetConfig] = Field(default_factory=list)
    # How often `outputs run` looks for new objects and due alerts.
    poll_seconds: float = 0.25
    # A failed alert waits base * 2^attempts seconds (jittered), at most `backoff_cap`.
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    # Delivered alerts are kept this many days (their keys answer "sent twice?").
    keep_days: float = 7.0

    @field_validator("targets")
    @classmethod
    def _unique(cls, v: list[TargetConfig]) -> list[TargetConfig]:
        names = [t.name for t in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"outputs named twice: {', '.join(twice)}")
        return v
