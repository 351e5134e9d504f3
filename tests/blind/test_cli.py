"""`shieldwall blind` commands on a node home (the end-to-end test runs them on real nodes)."""

from __future__ import annotations

from typer.testing import CliRunner

from shieldwall.blind.sets import own_sets
from shieldwall.config import init_home, load_config
from shieldwall.keys.oprf import current_epoch
from shieldwall.store import Provenance, Store
from tests.blind.helpers import OWNER, SECRET_DOMAIN, SECRET_IP, protected


def _home(tmp_path):
    home = tmp_path / "node"
    init_home(home, OWNER)
    store = Store.open(load_config(home).db_url)
    store.put_many([protected(name="lantern"), protected(SECRET_DOMAIN, "domain-name:value"),
                    protected(pattern="[url:value LIKE 'http://%.example/']")],
                   Provenance(OWNER, "import"))
    store.close()
    return home


def _run(*args: str):
    from shieldwall.cli.blind import blind_app

    result = CliRunner().invoke(blind_app, list(args))
    assert SECRET_IP not in result.output and SECRET_DOMAIN not in result.output
    return result


def test_publish_list_rotate(tmp_path):
    home = _home(tmp_path)
    r = _run("publish", "--home", str(home), "--tlp", "red")
    assert r.exit_code == 0, r.output
    assert "published 2 values of 2 indicators in 1 blind set (TLP:AMBER, key epoch 1" in r.output
    assert "skipped indicator--" in r.output and "only = and IN" in r.output
    r = _run("list", "--home", str(home))
    assert "key epoch 1, 2 protected values in 1 set" in r.output
    r = _run("rotate", "--home", str(home))
    assert r.exit_code == 0 and "key epoch 2: republished 2 values" in r.output
    assert current_epoch(home) == 2
    store = Store.open(load_config(home).db_url)
    try:
        assert [o["key_epoch"] for o in own_sets(store, OWNER)] == [2]
    finally:
        store.close()


def test_publish_refuses_a_set_beyond_allies_and_an_empty_one(tmp_path):
    home = _home(tmp_path)
    r = _run("publish", "--home", str(home), "--set-tlp", "red")
    assert r.exit_code != 0 and "would reach no ally" in str(r.exception)
    r = _run("publish", "--home", str(home), "--tlp", "red", "--id", "indicator--x")
    assert r.exit_code != 0 and "no indicator of cert-north" in str(r.exception)


def test_pss_export_and_check(tmp_path):
    home = _home(tmp_path)
    key = tmp_path / "group.key"
    key.write_text("a group key of the amber sharing group\n")
    out = tmp_path / "pss"
    r = _run("pss-export", str(out), "--key-file", str(key), "--home", str(home),
             "--tlp", "red")
    assert r.exit_code == 0 and "wrote 2 values" in r.output
    r = _run("pss-check", str(out), "--key-file", str(key), SECRET_IP, "198.51.100.1")
    assert r.output.splitlines() == ["in set: line 1", "not in set: line 2"]
