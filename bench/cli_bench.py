"""Command-line bench (issue 13, section 6): what a user waits for, whole processes.

    .venv/bin/python -m bench.cli_bench [--repeat 5] [--big 100000] [--cold 3]

Each figure is the median wall time of several runs of a fresh `shieldwall` process (the
console script of this checkout's virtualenv), in the same run:

- `shieldwall stats` on a small node;
- `shieldwall import` of a 10-object bundle, with the warning-list index cache cold (an
  empty `XDG_CACHE_HOME`: the run builds it) and warm (built by an earlier run);
- `shieldwall import` of a 100,000-indicator bundle (the store bench's mix of IPv4, domain,
  URL and SHA-256 equality patterns, TLP:GREEN; ~46 MB) into a fresh node, warning lists on,
  warm cache; and the same with `--no-warninglists`, to show what the lists cost;
- the floor: a separate Python process doing `json.load` of the same bundle and a sqlite3
  `executemany` of (id, JSON text) rows into a WAL database, nothing else.

The 100k import and the floor alternate, so both meet the same neighbours on a shared
machine; the ratio floor / import (higher is better, 1.0 would be the floor) is computed
from their medians. The load average is printed before and after: quote it with the figures.
Beside each wall time, the median CPU time (user + system) of the process and its children
(an import's worker): it moves much less than wall time when others share the machine.
The modules are compiled to bytecode first, as `make install` does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.store_bench import indicators  # noqa: E402

CLI = str(Path(sys.executable).parent / "shieldwall")

FLOOR = """
import json, sqlite3, sys
objs = json.load(open(sys.argv[1], encoding="utf-8"))["objects"]
con = sqlite3.connect(sys.argv[2])
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE t (id TEXT PRIMARY KEY, json TEXT)")
con.executemany("INSERT INTO t VALUES (?, ?)", ((o["id"], json.dumps(o)) for o in objs))
con.commit()
con.close()
"""


def write_bundle(path: Path, objects: list[dict]) -> None:  # type: ignore[type-arg]
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "objects": objects}), encoding="utf-8")


CPU: list[float] = []  # CPU seconds of each `run`, in order


def run(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one process (its CPU seconds go to `CPU`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.cache = tmp / "cache"
        self.env = {**os.environ, "XDG_CACHE_HOME": str(self.cache)}
        self.env.pop("SHIELDWALL_HOME", None)
        self.homes = 0

    def home(self) -> Path:
        """A fresh node home (its creation is not timed)."""
        self.homes += 1
        home = self.tmp / f"home{self.homes}"
        subprocess.run([CLI, "init", "--member", "bench", "--home", str(home)], env=self.env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return home

    def drop(self, home: Path) -> None:
        shutil.rmtree(home, ignore_errors=True)

    def import_(self, path: Path, *extra: str) -> float:
        home = self.home()
        try:
            return run([CLI, "import", str(path), "--home", str(home), *extra], self.env)
        finally:
            self.drop(home)

    def cold_import(self, path: Path) -> float:
        shutil.rmtree(self.cache, ignore_errors=True)
        return self.import_(path)

    def floor(self, bundle: Path) -> float:
        db = self.tmp / "floor.db"
        try:
            return run([sys.executable, "-c", FLOOR, str(bundle), str(db)], self.env)
        finally:
            for f in self.tmp.glob("floor.db*"):
                f.unlink()


def median(fn: Callable[[], float], n: int) -> tuple[float, list[float], float]:
    """(median wall, the walls, median CPU) of `n` runs."""
    times, cpu = [], []
    for _ in range(n):
        times.append(fn())
        cpu.append(CPU[-1])
    return statistics.median(times), times, statistics.median(cpu)


def show(name: str, wall: float, times: list[float], cpu: float) -> None:
    print(f"{name:58} {wall:7.3f} s  CPU {cpu:6.2f} s   runs: "
          f"{' '.join(f'{t:.2f}' for t in times)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure (default 5)")
    ap.add_argument("--cold", type=int, default=3, help="cold-cache runs (each builds; 3)")
    ap.add_argument("--big", type=int, default=100_000, help="indicators in the big bundle")
    args = ap.parse_args(argv)

    # As `make install` does: the modules' bytecode up to date, so that no run compiles them
    # (with PYTHONDONTWRITEBYTECODE set, every run would).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "shieldwall")],
                   check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="cli-bench-") as d:
        tmp = Path(d)
        small, big = tmp / "ten.json", tmp / "big.json"
        write_bundle(small, indicators(10))
        write_bundle(big, indicators(args.big))
        b = Bench(tmp)
        print(f"load average before: {load()}   ({os.cpu_count()} CPUs)", flush=True)

        stats_home = b.home()
        subprocess.run([CLI, "import", str(small), "--home", str(stats_home),
                        "--no-warninglists"], env=b.env, check=True, stdout=subprocess.DEVNULL)
        def figure(name: str, fn: Callable[[], float], n: int) -> None:
            show(name, *median(fn, n))

        figure("shieldwall stats", lambda: run(
            [CLI, "stats", "--home", str(stats_home)], b.env), args.repeat)
        figure("shieldwall import, 10 objects, cold cache (builds it)",
               lambda: b.cold_import(small), args.cold)
        figure("shieldwall import, 10 objects, warm cache", lambda: b.import_(small),
               args.repeat)
        figure("shieldwall import, 10 objects, --no-warninglists",
               lambda: b.import_(small, "--no-warninglists"), args.repeat)

        imports: list[float] = []
        floors: list[float] = []
        cpu: dict[str, list[float]] = {"floor": [], "import": [], "bare": []}
        for _ in range(args.repeat):
            floors.append(b.floor(big))
            cpu["floor"].append(CPU[-1])
            imports.append(b.import_(big))
            cpu["import"].append(CPU[-1])
        bare = []
        for _ in range(args.repeat):
            bare.append(b.import_(big, "--no-warninglists"))
            cpu["bare"].append(CPU[-1])
        for name, times, key in (
                (f"floor: json.load + sqlite3 executemany, {args.big:,}", floors, "floor"),
                (f"shieldwall import, {args.big:,} indicators, warning lists", imports,
                 "import"),
                (f"shieldwall import, {args.big:,}, --no-warninglists", bare, "bare")):
            show(name, statistics.median(times), times, statistics.median(cpu[key]))
        floor_m, import_m = statistics.median(floors), statistics.median(imports)
        print(f"{'ratio floor / import (warning lists on)':58} {floor_m / import_m:7.2f}")
        print(f"{'ratio floor / import (--no-warninglists)':58} "
              f"{floor_m / statistics.median(bare):7.2f}")
        print(f"{'objects/s: import / floor':58} {args.big / import_m:8.0f} / "
              f"{args.big / floor_m:.0f}")
        print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
