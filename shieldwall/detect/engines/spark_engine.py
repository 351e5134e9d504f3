"""The retro-hunt plan on Apache Spark: `local[2]` on one machine, or a cluster's master.

The same SQL as on DuckDB (`retro_plan.SPARK` spells it), read from the same Parquet. Before
Spark is started, what would make it fail slowly or obscurely is checked and said in one
line: `pyspark` missing, a Java that is absent or older than 17 (Spark 4 runs on 17 and 21),
a `spark://` master that does not accept a connection within
`SHIELDWALL_SPARK_CONNECT_TIMEOUT` seconds (default 10; Spark itself would retry for a
minute). The session is small by default (driver 1 GiB, 4 shuffle partitions, no UI);
`spark-submit --conf` and `SPARK_CONF_DIR` override it on a cluster.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pyarrow as pa

from shieldwall.detect.engines import EngineError
from shieldwall.detect.retro_plan import EVENT_KEYS, SPARK

PYSPARK = "pyspark==4.3.0"
JAVA_MIN = 17
# What the plan needs of any session: its literals are written as DuckDB reads them (a
# backslash is a backslash), and times are UTC.
REQUIRED_CONF = {
    "spark.sql.parser.escapedStringLiterals": "true",
    "spark.sql.session.timeZone": "UTC",
}
# A session this process starts on `local[...]` is kept small: it shares a machine.
LOCAL_CONF = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def java_version() -> int:
    """The major version of the Java Spark would start (JAVA_HOME's, else the PATH's)."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    where = f"JAVA_HOME={home}" if home else "PATH"
    if not java or not Path(java).is_file():
        raise EngineError(f"the Spark engine needs Java {JAVA_MIN}: no java in {where} "
                          "(Debian: apt-get install openjdk-17-jre-headless)")
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"the Spark engine needs Java {JAVA_MIN}: {java} -version failed "
                          f"({exc})") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if done.returncode != 0 or not m:
        raise EngineError(f"the Spark engine needs Java {JAVA_MIN}: {java} -version said "
                          f"{(done.stderr or done.stdout).strip().splitlines()[:1]}")
    major = int(m.group(1)) if m.group(1) != "1" else int(m.group(2) or 0)
    if major < JAVA_MIN:
        raise EngineError(f"the Spark engine needs Java {JAVA_MIN} or later; {java} is Java "
                          f"{major} (set JAVA_HOME to a Java {JAVA_MIN}, e.g. "
                          "/usr/lib/jvm/java-17-openjdk-amd64)")
    return major


def check_master(master: str, timeout: float | None = None) -> None:
    """A `spark://host:port[,host:port]` master must accept a TCP connection (one of them,
    for a standby list); `local[...]`, `yarn` and `k8s://` are left to Spark."""
    if not master.startswith("spark://"):
        return
    if timeout is None:
        timeout = float(os.environ.get("SHIELDWALL_SPARK_CONNECT_TIMEOUT", "10"))
    reasons = []
    for hostport in master.removeprefix("spark://").split(","):
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise EngineError(f"--master {master!r}: give spark://host:port")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except OSError as exc:
            reasons.append(f"{hostport}: {exc.strerror or exc}")
    raise EngineError(f"Spark master {master} unreachable ({'; '.join(reasons)})")


class _Py4JRootRecords(logging.Filter):
    """py4j reports a connection lost mid-command (the application killed while a result
    streams back) with `logging.exception` on the root logger, and Python's logging, finding
    no handler, prints the whole traceback under our one-line error. `_said` already turns
    that failure into the line; the record itself is dropped, and only py4j's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and f"{os.sep}py4j{os.sep}" in record.pathname)


def quiet_py4j() -> None:
    """Drop py4j's root-logger records (once per process), and keep its own loggers' records
    (a lost connection's shutdown, logged with a traceback) from reaching the handler that
    the first of those root records installs."""
    logging.getLogger("py4j").propagate = False
    root = logging.getLogger()
    if not any(isinstance(f, _Py4JRootRecords) for f in root.filters):
        root.addFilter(_Py4JRootRecords())


@contextmanager
def _said(doing: str) -> Iterator[None]:
    """A failed Spark job (the application killed, executors lost, the master gone) is one
    line, not a JVM stack; nothing was recorded, and a re-run starts over."""
    try:
        yield
    except EngineError:
        raise
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0][:300] if text else type(exc).__name__
        raise EngineError(f"Spark failed {doing}: {first}") from None


def _footer_schema(files: list[Path]) -> Any:
    """The files' columns unified by name, read from their footers here (the driver sees
    the files: client mode, a shared mount), so that Spark need not run a job merging
    their schemas (11-19 s of a `local[2]` run's first query). None where a footer cannot
    be read or a type has no Spark spelling: Spark then merges them itself."""
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import from_arrow_schema

    try:
        merged = pa.unify_schemas([pq.read_schema(f).remove_metadata() for f in files],
                                  promote_options="permissive")
        if any(pa.types.is_null(t) for t in merged.types):
            return None
        return from_arrow_schema(merged, prefer_timestamp_ntz=False)
    except (OSError, pa.ArrowException, TypeError, ValueError):
        return None


class SparkEngine:
    dialect = SPARK
    row_keys = EVENT_KEYS  # an event is named by its time and line

    def __init__(self, session: Any, owned: bool = False) -> None:
        self.spark = session
        self._owned = owned

    @classmethod
    def start(cls, master: str | None = None, conf: dict[str, str] | None = None,
              app_name: str = "shieldwall-retro-hunt") -> SparkEngine:
        """A session on `master` (default `local[2]`), or the one this process already runs
        (a test run's), which is then left running at `close`. Under `spark-submit` the
        master and the session's resources are spark-submit's (`--master`, `--conf`)."""
        quiet_py4j()
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise EngineError(f"the Spark engine needs {PYSPARK}: pip install "
                              f"'{PYSPARK}' (or the project's spark extra)") from None
        active = SparkSession.getActiveSession()
        if active is not None:
            for key, value in REQUIRED_CONF.items():
                active.conf.set(key, value)
            return cls(active)
        submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started the JVM
        builder = SparkSession.builder.appName(app_name)
        settings = dict(REQUIRED_CONF)
        if not submitted or master:
            master = master or "local[2]"
            java_version()
            check_master(master)
            builder = builder.master(master)
            if master.startswith("local"):
                settings |= LOCAL_CONF
        for key, value in {**settings, **(conf or {})}.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # py4j / JVM start-up: one line, not a Java stack
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"Spark did not start ({master or 'the spark-submit master'}): "
                              f"{first}") from None
        session.sparkContext.setLogLevel("ERROR")
        return cls(session, owned=True)

    def view(self, name: str, files: list[Path], where: str = "",
             filesystem: Any = None) -> dict[str, str]:
        if filesystem is not None:
            raise EngineError("telemetry on an object store (s3://) is read by the DuckDB "
                              "engine: Spark would need Hadoop's s3a (the hadoop-aws jars), "
                              "which pyspark does not ship; mount the store, or use "
                              "--engine duckdb")
        with _said("reading the telemetry"):
            schema = _footer_schema(files)
            reader = (self.spark.read.schema(schema) if schema is not None
                      else self.spark.read.option("mergeSchema", "true"))
            df = reader.parquet(*[str(f) for f in files])
            if where:
                df = df.where(where)
            df.createOrReplaceTempView(name)
            return dict(df.dtypes)

    def register(self, name: str, table: pa.Table) -> None:
        with _said("sending the indicators"):
            self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def arrow(self, sql: str) -> pa.Table:
        with _said("running the plan"):
            return self.spark.sql(sql).toArrow()

    def explain(self, sql: str) -> str:
        return str(self.spark.sql(sql)._jdf.queryExecution().toString())

    def close(self) -> None:
        if self._owned:
            from py4j.protocol import Py4JError

            # The application may be gone (killed, its JVM lost): nothing to stop then.
            with suppress(Py4JError, OSError):
                self.spark.stop()
