"""The dashboard's case pages at scale (issue 15): the case list and the case page, over HTTP.

One store (pooled, as a serving node's; SQLite, or PostgreSQL with `--db-url`) holding C
cases as the coordination cell holds them (`bench.case_bench`'s alliance cases: incident,
request, dispatch, 15 observables, 30 events, 5 tasks, every item linked and named to the
case's audience, requesters and teams drawn from twelve members). The dashboard is mounted
on the node's TAXII app and driven in-process over ASGI (starlette's TestClient: the whole
route, from the session cookie to the rendered HTML, without a socket), signed in as a user
of one member (cert-north), whose cases (about a quarter) are the ones timed. Timed:

- the case list: `GET /dashboard/cases?after=CURSOR`, a page of 50 at a random cursor
  (sealed as the page seals it);
- the case page: `GET /dashboard/cases/ID` of a random case (load_case, verify_case, the
  tasks board, the timeline, HTML).

    .venv/bin/python -m bench.case_pages_bench --cases 20000 --repeats 200 --keep /tmp/casebench
    .venv/bin/python -m bench.case_pages_bench --cases 20000 --repeats 200 --db-url postgresql+psycopg://…
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from bench.case_bench import ALLIANCE, CELL, READER, _load, _p95, build_cases
from shieldwall.policy import Members
from shieldwall.store import Query, Store
from shieldwall.store.cursors import Cursors
from shieldwall.taxii.app import Settings, access_for, create_app
from shieldwall.web import mount
from shieldwall.web.users import create_user


def sign_in(client: TestClient, user: str, password: str) -> None:
    import re

    form = client.get("/dashboard/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    resp = client.post("/dashboard/login", data={"username": user, "password": password,
                                                 "csrf": csrf.group(1)},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text


def run(n: int, repeats: int, keep: Path | None, db_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = db_url or f"sqlite:///{(keep or Path(tmp)) / f'alliance-cases-{n}.db'}"
        store = Store.open(url, pooled=True)
        try:
            fresh = store.count(Query(types=["incident"])) < n
            took = build_cases(store, n) if fresh else None
            reg = Members(store.engine)
            for name in (*ALLIANCE, CELL):
                if reg.get(name) is None:
                    reg.add(name, "ally")
            user = f"bench-{secrets.token_hex(4)}"
            password = create_user(store, user, READER, "analyst")
            access = access_for(reg.get(READER))
            case_ids = [r.id for r in store.iter_query(Query(types=["incident"],
                                                             access=access))]
            print(f"{n:,} cases ({store.count(Query()):,} objects) "
                  + (f"written in {took:.0f} s" if took is not None else "kept")
                  + f" [{store.dialect}]; {READER} reads {len(case_ids):,}", flush=True)
            key = secrets.token_bytes(32)
            cursors = Cursors(key)
            app = create_app(store, Settings(node_member=CELL))
            mount(app, store, access_for, node_member=CELL, cursor_key=key)
            seqs = [r.seq for r in store.iter_query(Query(types=["x-shieldwall-assistance-"
                                                                 "request"], access=access))]
            rng = random.Random(15)
            with TestClient(app, base_url="http://127.0.0.1") as client:
                sign_in(client, user, password)
                listed, paged = [], []
                for _ in range(3):  # warm: templates compiled, pool filled
                    client.get("/dashboard/cases")
                    client.get(f"/dashboard/cases/{case_ids[0]}")
                for _ in range(repeats):
                    token = cursors.seal(rng.choice(seqs), "dashboard-cases", READER)
                    t = time.perf_counter()
                    resp = client.get(f"/dashboard/cases?after={token}")
                    listed.append(time.perf_counter() - t)
                    assert resp.status_code == 200
                for _ in range(repeats):
                    cid = rng.choice(case_ids)
                    t = time.perf_counter()
                    resp = client.get(f"/dashboard/cases/{cid}")
                    paged.append(time.perf_counter() - t)
                    assert resp.status_code == 200 and resp.text.count('class="tevent"') == 30
            print(f"case list page (GET /dashboard/cases, 50 cases at a random cursor; "
                  f"{repeats} requests): median {statistics.median(listed) * 1000:.1f} ms, "
                  f"p95 {_p95(listed) * 1000:.1f} ms", flush=True)
            print(f"case page (GET /dashboard/cases/ID, 30 events, 15 observables, 5 tasks; "
                  f"{repeats} random cases): median {statistics.median(paged) * 1000:.1f} ms, "
                  f"p95 {_p95(paged) * 1000:.1f} ms (load average {_load()})", flush=True)
        finally:
            store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--keep", type=Path, help="Keep (and reuse) the cases' SQLite store in "
                    "this directory (the same file `bench.case_bench --keep` makes).")
    ap.add_argument("--db-url", help="The cases' store at this URL instead (the database "
                    "`bench.case_bench --db-url` filled).")
    a = ap.parse_args()
    run(a.cases, a.repeats, a.keep, a.db_url)


if __name__ == "__main__":
    main()
