"""A case as a real TheHive 5 server answered it, imported.

thehive5-cases-list.json is the answer of a TheHive 5 instance to a case search (two
cases), kept by Palo Alto Networks as test data of Cortex XSOAR's TheHive Project
integration (demisto/content, MIT licence; NOTICE), byte for byte. Unlike the cases
written for test_imports.py from thehive4py's types, a real answer carries numbers only
(no severityLabel, papLabel nor tlpLabel) and the status "Open".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shieldwall.respond.imports import CaseImportError, import_doc, import_file
from shieldwall.stix.markings import TLP, resolve_tlp
from shieldwall.store import Query, Store
from tests.respond.test_imports import MEMBER, case_of

LISTED = Path(__file__).resolve().parents[1] / "data" / "respond" / "thehive5-cases-list.json"


def test_each_case_of_a_real_thehive_5_answer_becomes_its_own_case(store: Store) -> None:
    cases = json.loads(LISTED.read_text())
    results = [import_doc(store, MEMBER, c, "thehive") for c in cases]
    assert len({r.case_id for r in results}) == 2  # same title, two TheHive ids: two cases
    for result, source in zip(results, cases, strict=True):
        case = case_of(store, result.case_id)
        assert case.incident is not None
        assert case.incident["name"] == source["title"] == "new case"
        assert case.incident["description"] == "new case for test"
        # `tlp` 2 with no label: AMBER, named to the importing member
        assert resolve_tlp(case.incident, TLP.CLEAR) == TLP.AMBER
        (note,) = case.notes
        assert f"#{source['number']} ({source['_id']})" in note["content"]
        for line in ("severity: LOW", "PAP: AMBER", "status: Open",
                     "assignee: adrugobitski@paloaltonetworks.com"):
            assert line in note["content"], line
        assert result.counts == {"notes": 1}
    assert case_of(store, results[0].case_id).incident["created"] == (
        "2023-11-06T13:19:27.799Z")  # startDate 1699276767799

    total = store.count(Query(versions="all"))
    again = import_doc(store, MEMBER, cases[1], "thehive")
    assert again.case_id == results[1].case_id and again.stored == 0
    assert store.count(Query(versions="all")) == total


def test_the_whole_answer_is_refused_in_one_line_naming_what_it_is(store: Store) -> None:
    before = store.count(Query(versions="all"))
    with pytest.raises(CaseImportError) as err:
        import_file(store, MEMBER, LISTED, "thehive")
    assert "a list of 2 TheHive 5 cases" in str(err.value)
    assert "\n" not in str(err.value)
    assert store.count(Query(versions="all")) == before
