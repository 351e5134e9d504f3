"""The `[observe]` section of a node's config: who may scrape `/metrics`, log format.

```toml
[observe]
metrics_token_file = "/etc/shieldwall/metrics.token"  # scrapers send it as a bearer token
metrics_loopback = true   # a client on 127.0.0.1 / ::1 needs no token
json_logs = false         # one JSON object per log line (SHIELDWALL_OBSERVE__JSON_LOGS=true)
```
"""

from __future__ import annotations

from pydantic import BaseModel


class ObserveConfig(BaseModel):
    metrics_token_file: str | None = None
    # Set false when a reverse proxy on this host forwards outside clients: they would
    # all arrive from loopback.
    metrics_loopback: bool = True
    json_logs: bool = False
