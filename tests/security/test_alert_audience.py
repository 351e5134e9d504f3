"""Alerts leave for an audience only what TAXII would serve that audience.

A node's outputs are configured for a member (its own SOC, or a partner's, or the
cell); the alert router reads the store with the `Access` TAXII gives that member,
composed exactly as `shieldwall outputs run` composes it (`cli.outputs.audiences`).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from shieldwall.cli.outputs import audiences, build_runner
from shieldwall.config import init_home
from shieldwall.node import Node
from shieldwall.outputs.outbox import Outbox
from shieldwall.policy import Members
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance
from tests.outputs.helpers import SECRET, Receiver, close, once, own_indicator, sighting


def test_an_amber_strict_sighting_not_naming_the_audience_never_reaches_it(
        tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    rec = Receiver().start()
    kinds = ["sighting", "sighting-elsewhere", "campaign", "assistance-request"]
    targets = [
        {"name": "own-soc", "type": "webhook", "url": rec.url, "secret_file": str(secret),
         "alerts": kinds},
        {"name": "partner", "type": "webhook", "url": rec.url, "secret_file": str(secret),
         "audience": "partner-p", "alerts": kinds},
        {"name": "cell", "type": "webhook", "url": rec.url, "secret_file": str(secret),
         "audience": "coordination-cell", "alerts": ["assistance-request", "consultation"]},
    ]
    node = Node(init_home(tmp_path / "node", "cert-a", outputs={"targets": targets}))
    try:
        registry = Members(node.store.engine)
        registry.add("cert-b", "ally")
        registry.add("partner-p", "partner")
        registry.add("coordination-cell", "ally")
        store = node.store
        ind = own_indicator(store, "cert-a")  # GREEN, created by cert-a
        ind_p = own_indicator(store, "partner-p")
        runner = build_runner(node)
        runner.router.route()  # both outputs start here

        strict_elsewhere = sighting("cert-b", ind, tlp=TLP.AMBER_STRICT, audience=["cert-c"])
        strict_named = sighting("cert-b", ind, tlp=TLP.AMBER_STRICT, audience=["cert-a"])
        red_elsewhere = sighting("cert-b", ind, tlp=TLP.RED, audience=["cert-b"])
        amber = sighting("cert-b", ind, tlp=TLP.AMBER)
        green = sighting("cert-b", ind, tlp=TLP.GREEN)
        # A partner reads AMBER only when named (TLP as the alliance reads it).
        amber_p = sighting("cert-b", ind_p, tlp=TLP.AMBER)
        amber_p_named = sighting("cert-b", ind_p, tlp=TLP.AMBER, audience=["partner-p"])
        green_p = sighting("cert-b", ind_p, tlp=TLP.GREEN)
        request = {"type": "x-shieldwall-assistance-request", "spec_version": "2.1",
                   "id": "x-shieldwall-assistance-request--0b1e2d3c-4a5b-4c6d-8e7f-8091a2b3c4d5",
                   "created": "2024-05-01T00:00:00.000Z", "modified": "2024-05-01T00:00:00.000Z",
                   "name": "help: ransomware at cert-b", "object_marking_refs": [
                       "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"],
                   "x_shieldwall_audience": ["coordination-cell"]}  # AMBER+STRICT
        for obj in (strict_elsewhere, strict_named, red_elsewhere, amber, green, amber_p,
                    amber_p_named, green_p):
            store.put(obj, Provenance("cert-b"))
        store.put(request, Provenance("cert-b"))

        tallies = once(runner)
        close(runner)
        box = Outbox(store)
        bodies = [orjson.loads(b) for _, b in rec.requests]
        got = {(a["audience"], a["object"]["id"]) for a in bodies}
        assert got == {("cert-a", strict_named["id"]), ("cert-a", amber["id"]),
                       ("cert-a", green["id"]), ("partner-p", amber_p_named["id"]),
                       ("partner-p", green_p["id"]), ("coordination-cell", request["id"])}
        assert tallies["own-soc"].delivered == 3 and tallies["partner"].delivered == 2
        assert len(box.keys("own-soc")) == 3 and len(box.keys("partner")) == 2
        # Nothing of the hidden ones in any body sent anywhere, nor in the outbox.
        sent = b"".join(b for _, b in rec.requests)
        for hidden in (strict_elsewhere, red_elsewhere, amber_p):
            assert hidden["id"].encode() not in sent
        with store.engine.connect() as conn:
            from sqlalchemy import text

            held = "".join(r[0] for r in conn.execute(text(
                "SELECT body FROM alert_outbox WHERE output != 'cell'")))
        for hidden in (strict_elsewhere, red_elsewhere, request):
            assert hidden["id"] not in held
    finally:
        rec.stop()
        node.close()


def test_an_audience_that_is_not_a_member_is_refused_at_start(tmp_path: Path) -> None:
    import pytest

    from shieldwall.errors import ShieldwallError

    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    node = Node(init_home(tmp_path / "node", "cert-a", outputs={"targets": [
        {"name": "x", "type": "webhook", "url": "http://127.0.0.1:9/", "audience": "nobody",
         "secret_file": str(secret)}]}))
    try:
        with pytest.raises(ShieldwallError, match="audience 'nobody' is not a member"):
            audiences(node)
    finally:
        node.close()


def test_campaign_and_consultation_alerts_go_to_whom_they_concern(tmp_path: Path) -> None:
    """A campaign alerts the members it names; its consultation recommendation alerts
    only an audience the cell's policy names (the policy is TLP:RED for its readers)."""
    from shieldwall.assess.consultation import DEFAULT_POLICY, store_policy
    from shieldwall.policy import member_identity_id
    from shieldwall.stix.markings import tlp_marking_ref

    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    rec = Receiver().start()
    both = ["campaign", "consultation"]
    node = Node(init_home(tmp_path / "node", "coordination-cell", outputs={"targets": [
        {"name": "cell", "type": "webhook", "url": rec.url, "secret_file": str(secret),
         "alerts": both},
        {"name": "cert-a", "type": "webhook", "url": rec.url, "secret_file": str(secret),
         "audience": "cert-a", "alerts": both}]}))
    try:
        Members(node.store.engine).add("cert-a", "ally")
        store = node.store
        store_policy(store, DEFAULT_POLICY, cell="coordination-cell",
                     created_by_ref=member_identity_id("coordination-cell"))
        runner = build_runner(node)
        runner.router.route()

        def campaign(members: list[str], score: float, modified: str) -> dict:
            return {"type": "campaign", "spec_version": "2.1",
                    "id": "campaign--5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
                    "created": "2024-05-01T00:00:00.000Z", "modified": modified,
                    "name": "Candidate campaign", "object_marking_refs": [
                        tlp_marking_ref(TLP.GREEN)],
                    "created_by_ref": member_identity_id("coordination-cell"),
                    "x_shieldwall_members": members,
                    "x_shieldwall_severity": {"score": score, "members": members,
                                              "sector_names": ["energy"]}}

        store.put(campaign(["cert-a", "cert-b"], 65, "2024-05-01T00:00:00.000Z"),
                  Provenance("coordination-cell", "local"))
        once(runner)
        got = sorted((orjson.loads(b)["audience"], orjson.loads(b)["kind"],
                      orjson.loads(b)["summary"]) for _, b in rec.requests)
        assert got == [
            ("cert-a", "campaign", "campaign involving cert-a: Candidate campaign"),
            ("coordination-cell", "consultation",
             "consultation recommended (request-assistance) for Candidate campaign")]
        # A new version naming one more member: a new campaign alert for cert-a; the
        # recommendation did not change, so the cell hears nothing new.
        store.put(campaign(["cert-a", "cert-b", "cert-c"], 65, "2024-05-02T00:00:00.000Z"),
                  Provenance("coordination-cell", "local"))
        once(runner)
        close(runner)
        kinds = [(orjson.loads(b)["audience"], orjson.loads(b)["kind"])
                 for _, b in rec.requests[2:]]
        assert kinds == [("cert-a", "campaign")]
    finally:
        rec.stop()
        node.close()
