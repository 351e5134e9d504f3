"""`policy.access.access_for`: the reader's `Access`, one computation for TAXII, the
dashboard and the commands, without the web framework on the commands' path."""

from __future__ import annotations

from shieldwall.policy.access import access_for
from shieldwall.policy.model import Member
from shieldwall.policy.rules import visibility
from shieldwall.stix.markings import TLP
from tests.imports import packages_loaded


def test_access_is_the_visibility_decision() -> None:
    for tier in ("ally", "partner", "organisation"):
        member = Member("cert-test", tier)
        access, v = access_for(member), visibility(member)
        assert access.open_levels == frozenset(int(t) for t in v.open_levels)
        assert access.named_levels == frozenset(int(t) for t in v.named_levels)
        assert access.names == v.names and access.identities == v.identities
    assert int(TLP.AMBER) in access_for(Member("a", "ally")).open_levels
    assert int(TLP.AMBER) not in access_for(Member("p", "partner")).open_levels


def test_the_taxii_server_uses_the_same_function() -> None:
    from shieldwall.taxii import app

    assert app.access_for is access_for


def test_commands_that_read_as_a_member_do_not_import_the_web_framework() -> None:
    code = ("import shieldwall.cli.main, shieldwall.cli.case, shieldwall.cli.sensors\n"
            "from shieldwall.policy.access import access_for\n"
            "from shieldwall.policy.model import Member\n"
            "access_for(Member('x', 'ally'))")
    assert packages_loaded(code, {"fastapi", "starlette", "uvicorn"}) == set()
