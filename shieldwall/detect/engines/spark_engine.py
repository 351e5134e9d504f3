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

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa

from shieldwall.detect.engines import EngineError
from shieldwall.detect.retro_plan import SPARK

PYSPARK = "pyspark==4.3.0"
JAVA_MIN = 17
SESSION_CONF = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # The plan's literals are written as DuckDB reads them: a backslash is a backslash.
    "spark.sql.parser.escapedStringLiterals": "true",
    "spark.sql.session.timeZone": "UTC",
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


class SparkEngine:
    dialect = SPARK

    def __init__(self, session: Any, owned: bool = False) -> None:
        self.spark = session
        self._owned = owned

    @classmethod
    def start(cls, master: str = "local[2]", conf: dict[str, str] | None = None,
              app_name: str = "shieldwall-retro-hunt") -> SparkEngine:
        """A session on `master`, or the one this process already runs (a test run's, or
        the one `spark-submit` made), which is then left running at `close`."""
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise EngineError(f"the Spark engine needs {PYSPARK}: pip install "
                              f"'{PYSPARK}' (or the project's spark extra)") from None
        active = SparkSession.getActiveSession()
        if active is not None:
            return cls(active)
        if not os.environ.get("SPARK_HOME"):  # spark-submit sets it and brings its own Java
            java_version()
        check_master(master)
        builder = SparkSession.builder.master(master).appName(app_name)
        for key, value in {**SESSION_CONF, **(conf or {})}.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # py4j / JVM start-up: one line, not a Java stack
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"Spark did not start on {master}: {first}") from None
        session.sparkContext.setLogLevel("ERROR")
        return cls(session, owned=True)

    def view(self, name: str, files: list[Path], where: str = "") -> dict[str, str]:
        df = self.spark.read.option("mergeSchema", "true").parquet(*[str(f) for f in files])
        if where:
            df = df.where(where)
        df.createOrReplaceTempView(name)
        return dict(df.dtypes)

    def register(self, name: str, table: pa.Table) -> None:
        self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def arrow(self, sql: str) -> pa.Table:
        return self.spark.sql(sql).toArrow()

    def explain(self, sql: str) -> str:
        return str(self.spark.sql(sql)._jdf.queryExecution().toString())

    def close(self) -> None:
        if self._owned:
            self.spark.stop()
