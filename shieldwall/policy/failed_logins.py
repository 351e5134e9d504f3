"""Failed sign-ins counted per client address, for every door into a node.

Past `max_failures` in `window` seconds an address is refused without its credentials
being checked, which caps an online guessing attack at a handful of tries a minute.
TAXII and the dashboard share this one counter type (each keeps its own instance).
"""

from __future__ import annotations

import threading
import time
from collections import deque


class FailedLogins:
    def __init__(self, max_failures: int = 10, window: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._seen.setdefault(client, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked(self, client: str) -> float:
        """Seconds until `client` may try again (0: it may try now)."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(client, now)
            if len(q) < self.max_failures:
                return 0.0
            return max(0.0, q[0] + self.window - now)

    def record(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._seen) > 10_000:  # forget the quiet ones; bounded memory
                for key in [k for k, v in self._seen.items() if not v][:5_000]:
                    del self._seen[key]
