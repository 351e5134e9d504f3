"""schemathesis against the server's own OpenAPI schema: whatever it sends, no 500."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import indicator
from tests.taxii.conftest import Server, add_members, make_home, start_server

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    home = make_home(tmp_path_factory.mktemp("fuzz"))
    token = add_members(home, {"fuzzer": "ally"})["fuzzer"]
    server = start_server(home, "--rate-limit", "0")
    import httpx

    httpx.post(server.api("collections/alliance/objects/"), auth=("fuzzer", token),
               json={"objects": [indicator()]},
               headers={"Content-Type": "application/taxii+json;version=2.1"})
    yield server, token
    server.stop()


@pytest.mark.slow
def test_no_server_errors(node: tuple[Server, str], tmp_path: Path) -> None:
    server, token = node
    proc = subprocess.run(
        [SCHEMATHESIS, "run", server.url + "/openapi.json",
         "--checks", "not_a_server_error",
         "--max-examples", "15",
         "--generation-deterministic",
         "--request-timeout", "20",
         "--phases", "examples,coverage,fuzzing",
         "-H", f"Authorization: Bearer {token}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    ran = re.search(r"(\d+) generated, (\d+) passed", proc.stdout)
    assert ran and int(ran.group(1)) > 100 and ran.group(1) == ran.group(2), tail
    assert not [line for line in server.log if '"status":500' in line], tail
