"""OpenMP's wait policy for the CPU stages: ``OMP_WAIT_POLICY=PASSIVE`` against the library default, on a quiet
machine and on one whose cores are all busy with other work.

In a small project made here (the offline profile's params; MiniLM's base weights; ``pos-wsj``), the
extraction and the probe stage run as ``python -m pipeline extract|probe ...`` subprocesses with torch's
default thread count (all cores: a user running one stage by hand), once per policy and condition, rounds
interleaved. The figure is the stage's own time from its log (``done in X s`` / ``(X s) ->``: after the
imports, which the policy does not touch). "busy" starts one spinning Python process per core for the
duration of the run, as other jobs on a shared machine would.

Usage: ``python benchmarks/wait_policy.py [--rounds 3] [--out benchmarks/results/wait_policy.json]``; it
writes nothing outside a temporary folder but ``--out``. Keep the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"extract": (["extract", "--model", "minilm", "--variant", "base", "--task", "pos-wsj"],
                      re.compile(r"done in ([0-9.]+) s")),
          "probe": (["probe", "--model", "minilm", "--variant", "base", "--task", "pos-wsj"],
                    re.compile(r"\(([0-9.]+) s\) ->"))}
POLICIES = {"PASSIVE": "PASSIVE", "default": None}
log = logging.getLogger("wait_policy")


def run_stage(root: Path, args: list[str], policy: str | None) -> str:
    """Run ``python -m pipeline *args`` in ``root`` with ``OMP_WAIT_POLICY`` set to ``policy`` (None: unset);
    return its log output."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    else:
        env["LINGSHIFT_OMP_WAIT_POLICY"] = "default"  # pipeline/__main__.py: leave OpenMP's default alone
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=root, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stderr + done.stdout


def busy(n: int) -> list[subprocess.Popen]:
    """``n`` processes that spin on a core each until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    times: dict[str, dict[str, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="wait-policy-") as tmp:
        root = Path(tmp)
        params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        for setup in (["model", "--model", "minilm"], ["prepare", "--task", "pos-wsj"], STAGES["extract"][0]):
            run_stage(root, setup, "PASSIVE")
        for condition in ("quiet", "busy"):
            spinners = busy(cores) if condition == "busy" else []
            try:
                time.sleep(1 if spinners else 0)
                for r in range(args.rounds):
                    for stage, (stage_args, pattern) in STAGES.items():
                        for name, policy in POLICIES.items():
                            out = run_stage(root, stage_args, policy)
                            match = pattern.search(out)
                            if match is None:
                                raise RuntimeError(f"no time in the {stage} log:\n{out[-1500:]}")
                            secs = float(match.group(1))
                            times.setdefault(condition, {}).setdefault(stage, {}).setdefault(name, []).append(secs)
                            log.info("%s, round %d: %s with %s: %.2f s", condition, r + 1, stage, name, secs)
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
    from pipeline.provenance import cpu_model, library_versions

    summary = {c: {s: {p: {"median_s": round(statistics.median(v), 2), "all_s": v} for p, v in by_p.items()}
                   for s, by_p in by_s.items()} for c, by_s in times.items()}
    for by_s in summary.values():
        for by_p in by_s.values():
            by_p["passive_over_default"] = round(by_p["PASSIVE"]["median_s"] / by_p["default"]["median_s"], 2)
    result = {"cpu": cpu_model(), "cores": cores, "torch_threads": "default (all cores)",
              "versions": library_versions(), "date": time.strftime("%Y-%m-%d"),
              "what": "stage's own seconds (after imports), MiniLM base on pos-wsj, offline profile settings",
              "conditions": {"quiet": "nothing else running", "busy": f"{cores} spinning processes, one per core"},
              "results": summary}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
