"""Case templates as CACAO 2.0 playbooks: validated against the OASIS schemas, refused with
the schema's reason in one line, rendered as the tasks people do."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shieldwall.respond import playbooks
from shieldwall.respond.playbooks import PlaybookError

TEMPLATES = ("ddos", "phishing-wave", "ransomware-outbreak", "supply-chain-compromise")


def _first(playbook: dict[str, Any], kind: str) -> str:
    return next(k for k, s in playbook["workflow"].items() if s["type"] == kind)


def test_the_four_templates_ship_and_validate() -> None:
    shipped = playbooks.templates()
    assert sorted(shipped) == list(TEMPLATES)
    for playbook in shipped.values():
        assert playbook["spec_version"] == "cacao-2.0"
        assert len(playbooks.steps(playbook)) >= 5


def test_the_schemas_are_the_oasis_ones_and_nothing_is_fetched() -> None:
    ids = {json.loads(p.read_text())["$id"] for p in playbooks.SCHEMA_DIR.rglob("*.json")}
    assert len(ids) == 51
    assert all(i.startswith("https://raw.githubusercontent.com/oasis-open/cacao-json-schemas/")
               for i in ids)
    assert (playbooks.SCHEMA_DIR / "LICENSE.txt").read_text().lstrip().startswith("Apache License")


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda d: d.pop("workflow_start"), "'workflow_start' is a required property"),
    (lambda d: d.update(spec_version="cacao-1.0"), "'cacao-1.0' is not one of ['cacao-2.0'] "
                                                    "(at spec_version)"),
    (lambda d: d.update(created="yesterday"), "'yesterday' does not match"),
    (lambda d: d.update(severity=500), "500 is greater than the maximum of 100 (at severity)"),
    (lambda d: d["workflow"][_first(d, "action")].pop("agent"), "'agent' is a required property"),
    (lambda d: d["workflow"][_first(d, "action")]["commands"].clear(), "[] should be non-empty"),
    (lambda d: d.update(playbook_types="investigation"), "'investigation' is not of type 'array'"),
])
def test_a_playbook_that_does_not_validate_is_refused_with_the_schemas_reason(
        mutate: Any, reason: str) -> None:
    playbook = copy.deepcopy(playbooks.template("ddos"))
    mutate(playbook)
    with pytest.raises(PlaybookError) as err:
        playbooks.validate(playbook)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("playbook 'DDoS' does not validate against the CACAO 2.0 schemas: ")
    assert reason in message


def test_what_the_specification_requires_beyond_the_schemas_is_refused_too() -> None:
    base = playbooks.template("ddos")
    action = _first(base, "action")

    dangling = copy.deepcopy(base)
    dangling["workflow"][action]["on_completion"] = "action--00000000-0000-4000-8000-000000000000"
    with pytest.raises(PlaybookError, match=r"on_completion names 'action--0000.*not a step"):
        playbooks.validate(dangling)

    misnamed = copy.deepcopy(base)
    misnamed["workflow"]["end--11111111-1111-4111-8111-111111111111"] = (
        misnamed["workflow"].pop(action))
    with pytest.raises(PlaybookError, match="does not validate"):  # end.json's own `not` rule
        playbooks.validate(misnamed)

    unknown_agent = copy.deepcopy(base)
    unknown_agent["workflow"][action]["agent"] = "individual--00000000-0000-4000-8000-000000000000"
    with pytest.raises(PlaybookError, match="is not in agent_definitions"):
        playbooks.validate(unknown_agent)

    start_is_action = copy.deepcopy(base)
    start_is_action["workflow_start"] = action
    with pytest.raises(PlaybookError, match="workflow_start must name a start step"):
        playbooks.validate(start_is_action)


def test_bad_files_are_refused_in_one_line(tmp_path: Path) -> None:
    cases = {
        "notjson.json": b"{not json",
        "deep.json": b"[" * 100 + b"]" * 100,
        "array.json": b"[]",
        "big.json": b" " * (playbooks.MAX_BYTES + 1),
    }
    expected = {"notjson.json": "not JSON", "deep.json": "nested deeper than 64",
                "array.json": "not an object", "big.json": "a playbook may be at most"}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(PlaybookError) as err:
            playbooks.template(str(path))
        assert expected[name] in str(err.value)
        assert "\n" not in str(err.value)


def test_an_unknown_template_names_the_known_ones() -> None:
    with pytest.raises(PlaybookError, match="choose one of ddos, phishing-wave, "
                                            "ransomware-outbreak, supply-chain-compromise"):
        playbooks.template("earthquake")


def test_a_users_own_playbook_file_is_a_template(tmp_path: Path) -> None:
    own = copy.deepcopy(playbooks.template("ddos"))
    own["name"] = "Our DDoS runbook"
    path = tmp_path / "ours.json"
    path.write_text(json.dumps(own))
    assert playbooks.template(str(path))["name"] == "Our DDoS runbook"


def test_steps_follow_the_workflow_with_their_role_and_condition() -> None:
    rendered = playbooks.steps(playbooks.template("phishing-wave"))
    names = [s.name for s in rendered]
    assert names[0] == "Collect samples of the phishing mail"
    assert names[-1] == "Warn staff and publish to the alliance"
    assert len(names) == len(set(names)) == 7
    reset = next(s for s in rendered if s.name == "Reset the credentials that were given")
    assert reset.condition == "if Did any recipient enter credentials on the phishing page?"
    # The false branch is where the branches join: it is done whatever the answer.
    hosts = next(s for s in rendered if s.name.startswith("Check the hosts"))
    assert hosts.condition is None
    assert reset.role == "Requesting member's SOC"
    assert hosts.role == "Rapid reaction team"
    assert "Do: Reset the passwords" in reset.description
    assert reset.activity == "restrict-access"


def test_parallel_branches_and_unreached_steps() -> None:
    playbook = copy.deepcopy(playbooks.template("ddos"))
    wf = playbook["workflow"]
    start = wf[playbook["workflow_start"]]
    first, second = [k for k, s in wf.items() if s["type"] == "action"][:2]
    parallel = "parallel--22222222-2222-4222-8222-222222222222"
    join = wf[second]["on_completion"]
    wf[first]["on_completion"] = join
    wf[parallel] = {"type": "parallel", "next_steps": [second, first], "on_completion": join}
    start["on_completion"] = parallel
    playbooks.validate(playbook)
    names = [s.name for s in playbooks.steps(playbook)]
    # Both branches, in their listed order, before the step where they join.
    assert names[:3] == [wf[second]["name"], wf[first]["name"], wf[join]["name"]]
    orphan = "action--33333333-3333-4333-8333-333333333333"
    wf[orphan] = {**wf[first], "name": "Never reached"}
    playbooks.validate(playbook)
    assert "Never reached" not in [s.name for s in playbooks.steps(playbook)]


def test_a_loop_is_cut_where_it_closes() -> None:
    playbook = copy.deepcopy(playbooks.template("ddos"))
    wf = playbook["workflow"]
    actions = [k for k, s in wf.items() if s["type"] == "action"]
    loop = "while-condition--44444444-4444-4444-8444-444444444444"
    wf[loop] = {"type": "while-condition", "condition": "the attack goes on",
                "on_true": actions[3], "on_completion": wf[actions[3]]["on_completion"]}
    wf[actions[2]]["on_completion"] = loop
    wf[actions[3]]["on_completion"] = loop
    playbooks.validate(playbook)
    rendered = playbooks.steps(playbook)
    assert [s.name for s in rendered] == [wf[k]["name"] for k in actions]
    assert rendered[3].condition == "while the attack goes on"


def test_applying_a_template_adds_its_steps_as_tasks_once(store: Any) -> None:
    from shieldwall.assess.incidents import IncidentFields, new_incident
    from shieldwall.policy import Member
    from shieldwall.respond.cases import add_to_case, open_case
    from shieldwall.respond.model import Marking, assistance_request
    from shieldwall.stix.identity import member_identity_id
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Provenance
    from shieldwall.taxii.app import access_for

    inc = new_incident(member_identity_id("cert-south"),
                       IncidentFields(name="Encrypted file servers"), tlp=TLP.AMBER)[0]
    store.put(inc, Provenance("cert-south", "local"))
    # A case is an incident its member asked the alliance's help for.
    add_to_case(store, "cert-south", inc["id"], assistance_request(
        requester="cert-south", cell="cell", incident_id=inc["id"], needs=["forensics"],
        marking=Marking(TLP.AMBER, ("cell", "cert-south"))))
    access = access_for(Member("cert-south", "ally"))
    playbook = playbooks.template("ransomware-outbreak")
    case = open_case(store, inc["id"], access)
    added = playbooks.apply(store, "cert-south", case, playbook, tlp=TLP.GREEN)
    wanted = playbooks.steps(playbook)
    assert [t["name"] for t in added] == [s.name for s in wanted]
    case = open_case(store, inc["id"], access)
    assert sorted(t["name"] for t in case.tasks) == sorted(s.name for s in wanted)
    capture = next(t for t in case.tasks if t["name"] == "Capture memory and disk images")
    assert capture["outcome"] == "pending"
    assert capture["description"].startswith("Who: Rapid reaction team\n")
    assert "Do: Capture memory of two affected hosts" in capture["description"]
    assert playbook["id"] in capture["description"]
    # Applying again adds nothing: the case holds a task for every step already.
    assert playbooks.apply(store, "cert-south", case, playbook) == []
    assert len(open_case(store, inc["id"], access).tasks) == len(wanted)
    # Another member's reader sees the GREEN tasks, as any item of the case.
    assert len(open_case(store, inc["id"], access_for(Member("cert-east", "ally"))).tasks) \
        == len(wanted)
