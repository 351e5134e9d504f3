"""TAXII clients we did not write against a real `shieldwall serve`: Cyware's cytaxii2
(which follows discovery's `default` as it is, so a relative URL failed with "No scheme
supplied") and the OASIS taxii2-client from the discovery URL alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from cytaxii2.cytaxii2 import cytaxii2
from taxii2client.v21 import Server

from shieldwall.config import CONFIG_NAME
from tests.factories import indicator
from tests.taxii.conftest import Server as Proc
from tests.taxii.conftest import add_members, make_home, start_server


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str]]:
    home = make_home(tmp_path_factory.mktemp("foreign"))
    token = add_members(home, {"alice": "ally"})["alice"]
    server = start_server(home, "--rate-limit", "0")
    yield server, token
    server.stop()


def test_cytaxii2_discovers_lists_posts_and_polls(node: tuple[Proc, str]) -> None:
    server, token = node
    client = cytaxii2(server.url + "/taxii2/", "alice", token)
    found = client.discovery_request()
    assert found["status_code"] == 200, found
    assert found["response"]["default"] == server.api()  # absolute, with its scheme
    colls = client.collection_request()
    assert colls["status_code"] == 200, colls
    alliance = next(c["id"] for c in colls["response"]["collections"]
                    if c.get("alias") == "alliance")
    ind = indicator("203.0.113.77")
    posted = client.inbox_request(alliance, json.dumps({"objects": [ind]}))
    assert posted["status_code"] == 202, posted
    assert posted["response"]["success_count"] == 1
    polled = client.poll_request(alliance, object_id=ind["id"])
    assert polled["status_code"] == 200, polled
    assert [o["id"] for o in polled["response"]["objects"]] == [ind["id"]]


def test_taxii2_client_follows_discovery_to_the_api_root(node: tuple[Proc, str]) -> None:
    server, token = node
    srv = Server(server.url + "/taxii2/", user="alice", password=token)
    assert srv.default is not None and srv.default.url == server.api()
    assert {c.alias for c in srv.default.collections} >= {"alliance", "sightings"}


def test_discovery_advertises_the_configured_public_url(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    token = add_members(home, {"alice": "ally"})["alice"]
    path = home / CONFIG_NAME
    import tomllib

    data = tomllib.loads(path.read_text())
    data.setdefault("server", {})["public_url"] = "https://taxii.cert-a.example:8021/"
    path.write_text(tomli_w.dumps(data))
    server = start_server(home, "--rate-limit", "0")
    try:
        found = cytaxii2(server.url + "/taxii2/", "alice", token).discovery_request()
        assert found["response"]["default"] == "https://taxii.cert-a.example:8021/api/"
        assert found["response"]["api_roots"] == ["https://taxii.cert-a.example:8021/api/"]
    finally:
        server.stop()
