"""The demo's rapid-reaction act (`make demo`, after the consultation recommendation).

cert-south asks for help with its incident; the cell dispatches two responders of
cert-north; the team opens the case from the ransomware template, records evidence with its
custody, finds a command-and-control address in cert-south's logs that no feed knew, and
publishes it at TLP:GREEN; cert-east's node looks for it in the telemetry it kept, finds
it, and its sighting reaches every node; the cell's campaign takes it in. Everything runs
through the same functions as the `assist` and `case` commands, in this process, against
the nodes' stores; federation between the serving nodes carries each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from shieldwall.cli.common import counted

# The address the team finds: cert-south's infected host beacons to it, and so did one of
# cert-east's, before anyone knew (TEST-NET-2: an address for documentation).
C2 = "198.51.100.23"
WAIT = 30.0


def _access(member: str) -> Any:
    from shieldwall.policy import Member
    from shieldwall.policy.access import access_for

    return access_for(Member(member, "ally"))


def _until(check: Callable[[], Any], what: str, tl: Callable[[str, str], None], who: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    tl(who, f"[red]did not see {what} within {WAIT:.0f}s[/]")
    return None


def play(nodes: Sequence[Any], incident_id: str, campaign_id: str | None,
         tl: Callable[[str, str], None]) -> bool:
    """The act; True when every step was seen where it should be."""
    from shieldwall.node import member_identity
    from shieldwall.respond import assist, playbooks, roster
    from shieldwall.respond.cases import load_case, open_case, share_with_team
    from shieldwall.respond.evidence import record_custody, record_evidence
    from shieldwall.respond.publish import publish
    from shieldwall.respond.verify import verify_case
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Query

    by = {n.name: n for n in nodes}
    north, south, east, cell = (by[x] for x in ("cert-north", "cert-south", "cert-east",
                                                 "coordination"))
    req = assist.request_assistance(south.store, member=south.name, cell=cell.name,
                                    incident_id=incident_id,
                                    needs=["forensics", "malware-analysis"],
                                    access=_access(south.name))
    tl(south.name, "asks the alliance for help: forensics, malware analysis (TLP:AMBER+STRICT, "
       "named to the cell)")
    if not _until(lambda: cell.store.get(req["id"]), "the request", tl, cell.name):
        return False
    roster.add(cell.store, "cert-north:alice", name="Alice", skills=["forensics"])
    roster.add(cell.store, "cert-north:bob", name="Bob", skills=["malware-analysis"])
    d = assist.dispatch_team(cell.store, cell=cell.name, request_id=req["id"],
                             team=["cert-north:alice", "cert-north:bob"],
                             lead="cert-north:alice", reason="cert-north contained the same "
                             "family last spring", by="duty officer", access=_access(cell.name))
    tl(cell.name, "dispatches a rapid reaction team from cert-north (alice, lead; bob); the "
       "decision is in the audit log")
    if not _until(lambda: south.store.get(d["id"]) and north.store.get(d["id"]),
                  "the dispatch", tl, north.name):
        return False
    shared = share_with_team(south.store, south.name,
                             load_case(south.store, incident_id, _access(south.name)))
    tl(south.name, f"shares its case with the team ({counted(len(shared), 'item')})")
    if not _until(lambda: north.store.get(incident_id) and north.store.get(req["id"]),
                  "the case", tl, north.name):
        return False

    case = open_case(north.store, incident_id, _access(north.name))
    tasks = playbooks.apply(north.store, north.name, case,
                            playbooks.template("ransomware-outbreak"))
    tl(north.name, f"opens the case from the ransomware template (CACAO 2.0): "
       f"{counted(len(tasks), 'task')}")
    from shieldwall.keys.signing import node_keys

    keys = node_keys(north.home, north.name)
    case = load_case(north.store, incident_id, _access(north.name))
    item, _ = record_evidence(
        north.store, north.home, keys, case, actor="cert-north:alice",
        name="memory image of 10.20.4.17", sha256="9" * 64, size=8_589_934_592,
        kept_at="cert-south evidence locker, bag 0417", collected_by="cert-north:alice",
        collected_how="winpmem over the console, hashed on the spot")
    record_custody(north.store, north.home, keys, incident_id, item["id"],
                   _access(north.name), action="analysed", actor="cert-north:bob")
    report = verify_case(north.store, incident_id, _access(north.name))
    verdict = "verified" if not report.findings else f"{len(report.findings)} finding(s)"
    tl(north.name, f"records evidence with its chain of custody (signed, hash-chained): "
       f"case verify: {verdict}")

    from shieldwall.respond.cases import add_observable

    add_observable(north.store, north.name, case, f"ipv4-addr:{C2}")
    case = load_case(north.store, incident_id, _access(north.name))
    done = publish(north.store, north.name, member_identity(north.name), case, tlp=TLP.GREEN)
    (ind,) = [i for i in done.indicators if C2 in i["pattern"]]
    tl(north.name, f"finds a command-and-control address no feed knew in cert-south's logs "
       f"({C2}, beacons every minute) and publishes it at TLP:GREEN with a report")

    def sighted(n: Any) -> list[dict[str, Any]]:
        return [r.obj() for r in n.store.iter_query(Query(types=["sighting"]))
                if r.obj().get("sighting_of_ref") == ind["id"]]

    def east_sighting() -> list[dict[str, Any]]:
        return [s for s in sighted(east)
                if s.get("created_by_ref") == member_identity(east.name)["id"]]

    found = _until(east_sighting, "its own sighting of the new address", tl, east.name)
    if not found:
        return False
    tl(east.name, "its node looked for the new indicator in the telemetry it kept: "
       f"{counted(int(found[0].get('count', 1)), 'hit')}, a sighting recorded")
    sid = found[0]["id"]
    everywhere = _until(lambda: all(n.store.get(sid) for n in nodes), "east's sighting",
                        tl, "alliance")
    if not everywhere:
        return False
    tl("alliance", "cert-east's sighting of the team's finding reaches every node")
    if campaign_id:
        from shieldwall.assess.correlation import Correlator, publish_campaigns
        from shieldwall.node import member_identity_id

        corr = Correlator(cell.store)
        corr.update_from_store()
        camps = publish_campaigns(cell.store, corr, member=cell.name,
                                  created_by_ref=member_identity_id(cell.name))
        camp = next((c for c in camps if c["id"] == campaign_id), None) or (
            max(camps, key=lambda c: len(c.get("x_shieldwall_members", [])))
            if camps else None)
        if camp is not None:
            sev = camp["x_shieldwall_severity"]
            tl(cell.name, f"recomputes the campaign with the new sighting: "
               f"{', '.join(camp['x_shieldwall_members'])}, severity {sev['score']} "
               f"({sev['level']})")
    return True
