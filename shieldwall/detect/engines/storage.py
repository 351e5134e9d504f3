"""Where the stored telemetry is: a directory, or an object store (`s3://`) read through
Arrow's own filesystem.

A retro-hunt asks its telemetry for the days kept, each day's event files and summaries
(with the footers naming what they cover), and builds the summaries a day lacks. On a
directory that is `detect.summaries`. On `s3://bucket/prefix` it is the same layout read
and written through `pyarrow.fs.S3FileSystem` (no other client): credentials and region as
every AWS client takes them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_DEFAULT_REGION`, or the instance's role), another endpoint than AWS's in the URI
(`s3://telemetry/cert?endpoint_override=minio.cert.example:9000&scheme=http`) or in
`AWS_ENDPOINT_URL`. A summary built there is one PUT: an object store never shows half an
object, so no temporary name is needed.

DuckDB reads the files through the same filesystem, as Arrow datasets (projection and
filters pushed into Arrow's scan). Spark reads object stores through Hadoop's `s3a`, whose
jars (`hadoop-aws` and the AWS SDK) pyspark does not ship: an `s3://` root on Spark is
refused in one line (docs/scale.md, Limits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from shieldwall.detect import summaries

REMOTE_SCHEMES = ("s3://",)


def is_remote(root: str | Path) -> bool:
    return str(root).startswith(REMOTE_SCHEMES)


class LocalTelemetry:
    """Telemetry in a directory (`<home>/telemetry`, or a mount)."""

    filesystem = None

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def day_dirs(self, first_day: str = "") -> list[str]:
        return summaries.day_dirs(self.root, first_day)

    def ensure(self, days: list[str]) -> int:
        return summaries.ensure(self.root, days)

    def covered(self, day: str) -> tuple[list[Any], set[str], list[str]]:
        return summaries.covered(self.root, day)

    def event_files(self, day: str) -> list[Any]:
        return summaries.event_files(self.root, day)

    def named(self, relative: set[str]) -> list[Any]:
        """Event files named relative to the root (a summary's `sources`) that exist."""
        return sorted(f for f in (self.root / s for s in relative) if f.exists())


class RemoteTelemetry:
    """The same layout in an object store: `s3://bucket/prefix` holding `day=…/` and
    `_summary/day=…/`. Paths handed to the engine are the filesystem's (`bucket/key`)."""

    def __init__(self, uri: str) -> None:
        import pyarrow.fs as pafs

        try:
            self.filesystem, self.base = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowException, OSError, ValueError) as exc:
            from shieldwall.detect.engines import EngineError

            raise EngineError(f"telemetry at {uri.split('?')[0]}: {exc}") from None
        self.base = self.base.rstrip("/")
        self.uri = uri

    def _list(self, path: str, dirs: bool) -> list[Any]:
        import pyarrow.fs as pafs

        sel = pafs.FileSelector(path, allow_not_found=True, recursive=False)
        want = pafs.FileType.Directory if dirs else pafs.FileType.File
        return sorted((i for i in self.filesystem.get_file_info(sel) if i.type == want),
                      key=lambda i: i.path)

    def day_dirs(self, first_day: str = "") -> list[str]:
        return [i.base_name for i in self._list(self.base, dirs=True)
                if i.base_name.startswith("day=")
                and i.base_name.removeprefix("day=") >= first_day]

    def event_files(self, day: str) -> list[str]:
        return [i.path for i in self._list(f"{self.base}/{day}", dirs=False)
                if i.base_name.endswith(".parquet")]

    def _summary_dir(self, day: str) -> str:
        return f"{self.base}/{summaries.SUMMARY_DIR}/{day}"

    def covered(self, day: str) -> tuple[list[str], set[str], list[str]]:
        files = [i.path for i in self._list(self._summary_dir(day), dirs=False)
                 if i.base_name.endswith(".parquet")]
        covers: set[str] = set()
        types: set[str] = set()
        for f in files:
            meta = pq.read_schema(f, filesystem=self.filesystem).metadata or {}
            covers.update(orjson.loads(meta.get(summaries.COVERS, b"[]")))
            types.update(orjson.loads(meta.get(summaries.TYPES, b"[]")))
        return files, covers, sorted(types)

    def ensure(self, days: list[str]) -> int:
        """The summaries the days lack, each read through Arrow and written as one object."""
        built = 0
        for day in days:
            _, covers, _ = self.covered(day)
            for raw in self.event_files(day):
                rel = raw.removeprefix(self.base + "/")
                if rel in covers:
                    continue
                table = pq.read_table(raw, filesystem=self.filesystem)
                summary = summaries.sorted_summary(
                    summaries.summarise(table, day.removeprefix("day="), rel), [rel])
                with self.filesystem.open_output_stream(
                        f"{self._summary_dir(day)}/{raw.rsplit('/', 1)[-1]}") as out:
                    pq.write_table(summary, out, compression="zstd",
                                   row_group_size=summaries.ROW_GROUP)
                built += 1
        return built

    def named(self, relative: set[str]) -> list[str]:
        import pyarrow.fs as pafs

        paths = sorted(f"{self.base}/{s}" for s in relative)
        return [i.path for i in self.filesystem.get_file_info(paths)
                if i.type == pafs.FileType.File]


def open_telemetry(root: str | Path) -> LocalTelemetry | RemoteTelemetry:
    return RemoteTelemetry(str(root)) if is_remote(root) else LocalTelemetry(Path(root))


def dataset(files: list[str], filesystem: Any) -> Any:
    """Parquet objects as one Arrow dataset, their columns unified by name (a column absent
    from a file reads as nulls there, as DuckDB's `union_by_name`)."""
    import pyarrow.dataset as ds

    schemas = [pq.read_schema(f, filesystem=filesystem) for f in files]
    schema = pa.unify_schemas([s.remove_metadata() for s in schemas],
                              promote_options="permissive")
    return ds.dataset(files, schema=schema, format="parquet", filesystem=filesystem)
