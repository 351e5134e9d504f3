"""`policy.access.access_for`: the reader's `Access`, one computation for TAXII, the
dashboard and the commands, without the web framework on the commands' path."""

from __future__ import annotations

import subprocess
import sys

from shieldwall.policy.access import access_for
from shieldwall.policy.model import Member
from shieldwall.policy.rules import visibility
from shieldwall.stix.markings import TLP


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
    code = ("import sys, shieldwall.cli.main, shieldwall.cli.case, shieldwall.cli.sensors; "
            "from shieldwall.policy.access import access_for; "
            "from shieldwall.policy.model import Member; access_for(Member('x', 'ally')); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'fastapi', 'starlette', 'uvicorn'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"
