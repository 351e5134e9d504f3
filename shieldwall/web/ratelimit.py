"""Failed sign-ins counted per client address: past `max_failures` in `window` seconds
the address is refused without its password being checked."""

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

    def blocked(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client, time.monotonic())) >= self.max_failures

    def record(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._seen) > 10_000:
                for key in [k for k, v in self._seen.items() if not v][:5_000]:
                    del self._seen[key]
