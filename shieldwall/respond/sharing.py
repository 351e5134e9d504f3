"""Sharing a case with its team as soon as the dispatch arrives (inside `serve`).

When the cell's dispatch reaches the requesting member's node, the member's case items
named to the cell are widened to the whole case audience (`cases.share_with_team`), so
the dispatched team's nodes receive them with the next federation round, not only after
someone on the member's node next runs a `case` or `assist` command. A cursor in the
store (`respond-team-share`: the newest object seq looked at) makes each dispatch
version cost one look; sharing again writes nothing (`share_with_team` skips what is
already named to the audience).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shieldwall.respond.cases import load_case, share_with_team
from shieldwall.respond.model import DISPATCH
from shieldwall.store import Access, Query, Store

log = logging.getLogger("shieldwall.respond")

CURSOR_KEY = "respond-team-share"


def share_dispatched(store: Store, member: str, access: Access) -> list[dict[str, Any]]:
    """Share every case of `member` whose dispatch arrived (or changed) since the last
    call with the dispatched team; the new versions written."""
    start = int(store.kv_get(CURSOR_KEY) or 0)
    newest = store.newest_seq()
    if newest <= start:
        return []
    cases = sorted({str(row.obj().get("incident_ref")) for row in store.iter_query(
        Query(types=[DISPATCH], after_seq=start, access=access))
        if row.obj().get("requester") == member})
    out: list[dict[str, Any]] = []
    for case_id in cases:
        case = load_case(store, case_id, access)
        if case.requester == member:  # the request is the member's own, as stored
            out += share_with_team(store, member, case)
    store.kv_set(CURSOR_KEY, str(newest))
    return out


def run_sharing(stop: threading.Event, store: Store, *, member: str, access: Access,
                interval: float = 1.0) -> None:
    """`share_dispatched` every `interval` seconds until `stop` (two indexed reads when
    nothing arrived)."""
    while not stop.wait(interval):
        try:
            shared = share_dispatched(store, member, access)
        except Exception as exc:  # one bad case must not stop sharing the others later
            log.warning("sharing dispatched cases failed: %s: %s", type(exc).__name__, exc)
            continue
        if shared:
            log.info("shared %d case item(s) with the dispatched team",
                     sum(1 for o in shared if o.get("type") != "relationship"))


def start_in_background(store: Store, *, member: str, access: Access) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_sharing, args=(stop, store),
                     kwargs={"member": member, "access": access}, daemon=True,
                     name="respond-team-share").start()
    return stop
