"""A lost Spark application is one line of ours on stderr, not py4j's Python traceback.

py4j reports a connection lost mid-command with `logging.exception` on the *root* logger; with
no handler configured, Python's logging then prints the whole traceback to stderr under our
one-line error (seen when the JVM was killed while a result was streaming back). The check
runs in a fresh interpreter, where the root logger is as a `shieldwall` command finds it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("py4j", reason="the spark extra (py4j) is not installed")


def _stderr_after(setup: str) -> str:
    """What a fresh process prints when py4j's gateway code logs a lost connection."""
    code = f"""
{setup}
import logging
import py4j.java_gateway as gw
# The same call py4j makes, compiled as py4j's own code (its file, the root logger).
lost = compile("try:\\n    raise ConnectionResetError(104, 'reset by peer')\\n"
               "except OSError:\\n    logging.exception('Exception while sending command.')\\n",
               gw.__file__, "exec")
exec(lost, {{"logging": logging}})
try:
    raise BrokenPipeError(32, "broken pipe")
except OSError:  # py4j's own logger, after the root record above installed a handler
    logging.getLogger("py4j.clientserver").exception("Exception occurred while shutting down")
logging.getLogger("shieldwall.test").warning("a record of ours")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stderr


def test_py4j_root_records_print_a_traceback_without_the_engine() -> None:
    """The control: the defect is real in a bare interpreter."""
    assert "Traceback" in _stderr_after("")


def test_the_spark_engine_silences_py4j_root_records_only() -> None:
    err = _stderr_after("from shieldwall.detect.engines.spark_engine import quiet_py4j\n"
                        "quiet_py4j()\nquiet_py4j()  # idempotent")
    assert "Traceback" not in err and "sending command" not in err, err
    assert "shutting down" not in err, err
    assert "a record of ours" in err  # other records still reach the handlers
