"""`SeqWatch`: polled from threads (the outputs runner polls it with `asyncio.to_thread`)
and closed while a poll may still run (a cancelled poll at shutdown). Unguarded, two threads
on its one SQLite connection, or a close under a running query, killed the process with
SIGSEGV (seen once in a full test run, in the webhook outputs test's worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shieldwall.store import Provenance, Store
from tests.factories import indicator

RACE = """
import sys, threading
from shieldwall.store import Store
store = Store.open(sys.argv[1])
for _ in range(200):
    watch = store.seq_watch()
    watch.newest()
    def poll():
        for _ in range(50):
            watch.newest()
    threads = [threading.Thread(target=poll) for _ in range(2)]
    for t in threads:
        t.start()
    watch.close()  # while the polls run
    for t in threads:
        t.join()
    watch.close()
print("survived")
"""


def test_polls_from_threads_and_a_close_meanwhile_do_not_crash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'watch.db'}"
    Store.open(url).close()
    done = subprocess.run([sys.executable, "-c", RACE, url], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "survived"


def test_a_closed_watch_reads_again_on_its_next_poll(sqlite_store: Store) -> None:
    watch = sqlite_store.seq_watch()
    assert watch.newest() == 0
    watch.close()
    sqlite_store.put(indicator(), Provenance("cert-a"))
    assert watch.newest() == sqlite_store.newest_seq() > 0
    watch.close()
