"""Wall time of a whole profile under each way of running its DAG, in one throwaway clone, and whether they
all write the same outputs.

Runners (each forced, one after the other, in the same clone of this checkout's HEAD):

- ``serial``: ``dvc repro --force``, DVC's own serial run (a new interpreter per stage, torch's default threads);
- ``ray``: ``python -m pipeline run --executor ray -f -j JOBS`` (an embedded local Ray, a new interpreter per
  stage, one thread each);
- ``cold``: ``python -m pipeline run --cold -f -j JOBS`` (local threads, a new interpreter per stage);
- ``warm``: ``python -m pipeline run -f -j JOBS`` (the default: stages forked from a preloaded server).

After each run the script hashes ``dvc.lock`` (which holds the md5 of every output: models, data, activation
stores, results) and every file under ``results/`` but ``results/runs/`` (run facts: times, hosts); the runs
agree when those are byte-identical. ``--profile paper-mini`` first writes the random stand-ins
(``scripts/make-paper-mini.py``) and points the Hugging Face clients at them offline, as ``make rehearse`` does.

Usage: ``python benchmarks/executors.py --profile offline [--runners serial,ray,cold,warm] [--jobs 2]
[--out benchmarks/results/executors-offline.json]``. Keep the machine otherwise idle: the load average
before and after each run is recorded with it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = ("serial", "ray", "cold", "warm")
log = logging.getLogger("executors")


def command(runner: str, jobs: int) -> list[str]:
    """The command line of ``runner`` (see the module doc)."""
    py = [sys.executable, "-m", "pipeline", "run", "-f", "-j", str(jobs)]
    return {"serial": [sys.executable, "-m", "dvc", "repro", "--force", "-q"], "ray": [*py, "--executor", "ray"],
            "cold": [*py, "--cold"], "warm": py}[runner]


def fingerprint(clone: Path) -> dict[str, str]:
    """sha256 of ``dvc.lock`` and of every file under ``results/`` except ``results/runs/``, by relative path."""
    files = [clone / "dvc.lock", *(p for p in sorted((clone / "results").rglob("*"))
                                   if p.is_file() and "runs" not in p.relative_to(clone / "results").parts[:1])]
    return {str(p.relative_to(clone)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def prepare_clone(tmp: Path, profile: str) -> tuple[Path, dict[str, str]]:
    """A clone of HEAD switched to ``profile``, and the environment its runs need."""
    clone = tmp / "copy"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(clone)}
    if profile == "paper-mini":
        standins = tmp / "standins"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make-paper-mini.py"), str(standins)], check=True,
                       stdout=subprocess.DEVNULL)
        shutil.copytree(standins / "corpora", clone / "corpora")
        hf = standins / "hf"
        env.update(HF_HOME=str(hf), HF_HUB_CACHE=str(hf / "hub"), HF_DATASETS_CACHE=str(hf / "datasets"),
                   HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "pipeline", "profile", profile], cwd=clone, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return clone, env


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="offline", choices=("offline", "paper-mini"))
    ap.add_argument("--runners", default=",".join(RUNNERS), help=f"comma-separated, of {', '.join(RUNNERS)}")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, help="JSON file to write (default: print only)")
    args = ap.parse_args()
    runners = args.runners.split(",")
    if unknown := sorted(set(runners) - set(RUNNERS)):
        ap.error(f"unknown runners {unknown}; choose from {', '.join(RUNNERS)}")
    from pipeline.provenance import cpu_model, library_versions

    rows = []
    with tempfile.TemporaryDirectory(prefix="executors-") as tmp:
        clone, env = prepare_clone(Path(tmp), args.profile)
        first: dict[str, str] | None = None
        for runner in runners:
            load0 = os.getloadavg()[0]
            log.info("%s: %s", runner, " ".join(command(runner, args.jobs)[1:]))
            t0 = time.perf_counter()
            done = subprocess.run(command(runner, args.jobs), cwd=clone, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                log.error("%s failed (exit %d):\n%s", runner, done.returncode, done.stderr[-3000:])
                return 1
            prints = fingerprint(clone)
            first = first or prints
            same = prints == first
            differ = sorted(k for k in set(prints) | set(first) if prints.get(k) != first.get(k))
            rows.append({"runner": runner, "command": " ".join(["python", *command(runner, args.jobs)[1:]]),
                         "wall_s": round(wall, 1), "load_before": round(load0, 2),
                         "load_after": round(os.getloadavg()[0], 2), "outputs_identical_to_first": same,
                         "differing": differ[:20], "files_compared": len(prints)})
            log.info("%s: %.1f s, outputs %s the first run's (%d files)", runner, wall,
                     "identical to" if same else f"DIFFER from ({len(differ)} files)", len(prints))
    result = {"profile": args.profile, "jobs": args.jobs, "cpu": cpu_model(), "cores": os.cpu_count(),
              "versions": library_versions(), "date": time.strftime("%Y-%m-%d"), "runs": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(rows, indent=1))
    return 0 if all(r["outputs_identical_to_first"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
