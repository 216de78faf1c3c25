"""The stage runner's overhead per stage: a DVC project of N trivial stages (each writes one line to its own
output), run with ``dvc repro --force`` (serial), ``python -m pipeline run -f`` (local executor) and
``python -m pipeline run -f --executor ray`` (an embedded Ray, started and stopped inside the run).

Usage: ``python benchmarks/stage_overhead.py [--stages 20] [--jobs 2]``; prints one line per runner (wall
seconds of the forced run, of a run with nothing to do, i.e. start-up and DVC's checks, and the difference
per stage) and the load average before and after, and writes nothing outside a temporary folder. A
stage's own work (``echo``) takes milliseconds, so the per-stage time is the runner's scheduling and DVC's
bookkeeping."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def project(root: Path, n: int) -> None:
    """A git + DVC repository with ``n`` independent stages ``s@0 .. s@n-1``, each ``echo i > out-i.txt``."""
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    stages = {"s": {"foreach": list(range(n)), "do": {"cmd": "echo ${item} > out-${item}.txt",
                                                       "outs": ["out-${item}.txt"]}}}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": ""}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    n, jobs = args.stages, str(args.jobs)
    run = [sys.executable, "-m", "pipeline", "--params", "params.yaml", "run", "-f", "-j", jobs]
    runners = {"dvc repro --force (serial)": [sys.executable, "-m", "dvc", "repro", "--force", "-q"],
               f"pipeline run -f -j {jobs} (local)": run,
               f"pipeline run -f -j {jobs} --executor ray (embedded, start-up included)": [*run, "--executor", "ray"]}
    print(f"{n} trivial stages; load average before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, cmd) in enumerate(runners.items()):
            root = Path(tmp) / f"p{i}"
            project(root, n)
            timed([sys.executable, "-m", "dvc", "repro", "-q"], root)  # first run: outputs and lock exist
            idle = timed([c for c in cmd if c not in ("-f", "--force")], root)  # start-up and checks only
            seconds = timed(cmd, root)
            print(f"{name}: {seconds:.1f} s; with nothing to run {idle:.1f} s; "
                  f"{(seconds - idle) / n:.2f} s per stage beyond that")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
