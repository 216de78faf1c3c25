"""Probe speed, ours vs NeuroX 1.0.9, each tool under its own best ``OMP_WAIT_POLICY``.

``OMP_WAIT_POLICY`` is read once when OpenMP starts, so every measurement is its own process: ``--repeats``
rounds, each running ours and NeuroX (defaults, l1 = l2 = 0, one layer at a time, as ``bench_probe.py``)
under ``PASSIVE`` and the policy unset, the order of the four runs reversed every other round. Each process
loads the store and converts NeuroX's float32 arrays before its clock starts; ours is timed ``--inner`` times
per process (median: its first fit pays torch's lazy start-up), NeuroX once (7 layer fits).

A run that exceeds ``--run-timeout`` is stopped and recorded as censored (``timed_out``: its time is at least
the cap, and the cap stands in for it in the medians): on a loaded machine the spinning policy can take many
times longer than the other, and a lower bound is enough to rule it out as a tool's best.

Reported: per tool and policy the median over rounds; each tool's faster policy (its best); the ratio
NeuroX-best / ours-best of the medians and, per round, of the two best-policy runs of that round (interleaved:
both saw the same load), their median; and the ratio under each single policy. The load average is recorded
before and after every run. Run in the benchmark environment (``make bench``)::

    python benchmarks/probe_fair.py --store activations/minilm/base/pos-wsj --out benchmarks/results/probe_fair.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.atomic import write_json  # noqa: E402

log = logging.getLogger("probe_fair")

POLICIES = ("unset", "PASSIVE")
TOOLS = ("ours", "neurox")


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where /proc is missing)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def worker(tool: str, store_path: Path, inner: int) -> dict[str, Any]:
    """One measurement in this process: seconds to fit all layers with ``tool`` (the store already open)."""
    import torch

    from pipeline.probing.solver import SolverConfig, fit
    from pipeline.store import ActivationStore

    store = ActivationStore(store_path)
    rows = {s: store.split_rows(s) for s in ("train", "dev", "test")}
    acts, y = store.activations, store.labels.astype(np.int64)
    if tool == "ours":
        runs = []
        for _ in range(inner):
            t0 = time.perf_counter()
            fit(acts[rows["train"]], y[rows["train"]], acts[rows["dev"]], y[rows["dev"]], config=SolverConfig())
            runs.append(time.perf_counter() - t0)
        return {"seconds": statistics.median(runs), "runs": runs, "torch_threads": torch.get_num_threads()}
    import neurox.interpretation.linear_probe as lp
    from bench_probe import neurox_inputs, run_neurox  # benchmarks/ is sys.path[0] when this file runs as a script

    _, y_nx, layers = neurox_inputs(store, rows)
    logging.getLogger("bench_probe").setLevel(logging.WARNING)
    res = run_neurox(lp, layers, y_nx, 0.0, 0.0)
    return {"seconds": float(sum(res["seconds"])), "runs": res["seconds"], "torch_threads": torch.get_num_threads()}


def measure(tool: str, policy: str, store: Path, inner: int, timeout: float) -> dict[str, Any]:
    """Run :func:`worker` in a fresh process under ``policy`` and return its record plus the load average
    (``timed_out`` and ``seconds`` = ``timeout`` when it ran longer)."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy != "unset":
        env["OMP_WAIT_POLICY"] = policy
    before = loadavg()
    cmd = [sys.executable, __file__, "--worker", tool, "--store", str(store), "--inner", str(inner)]
    try:
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=timeout)
        rec = {**json.loads(out.stdout.strip().splitlines()[-1]), "timed_out": False}
    except subprocess.TimeoutExpired:
        rec = {"seconds": timeout, "runs": [], "timed_out": True}
    return {"tool": tool, "policy": policy, **rec, "loadavg_before": before, "loadavg_after": loadavg()}


def summarise(runs: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """Medians per tool and policy, each tool's best policy, and the ratios (see the module docstring)."""
    med = {t: {p: statistics.median(r["seconds"] for r in runs if r["tool"] == t and r["policy"] == p)
               for p in POLICIES} for t in TOOLS}
    censored = {t: {p: any(r["timed_out"] for r in runs if r["tool"] == t and r["policy"] == p) for p in POLICIES}
                for t in TOOLS}
    best = {t: min(POLICIES, key=lambda p, t=t: med[t][p]) for t in TOOLS}
    by_round = [{(r["tool"], r["policy"]): r["seconds"] for r in runs if r["round"] == k} for k in range(repeats)]
    paired = [rd[("neurox", best["neurox"])] / rd[("ours", best["ours"])] for rd in by_round]
    loads = [x["loadavg_before"][0] for x in runs if x["loadavg_before"]] + \
            [x["loadavg_after"][0] for x in runs if x["loadavg_after"]]
    return {
        "seconds_median": med,
        "seconds_median_is_lower_bound": censored,
        "best_policy": best,
        "ratio_best_vs_best": med["neurox"][best["neurox"]] / med["ours"][best["ours"]],
        "ratio_best_vs_best_per_round": paired,
        "ratio_best_vs_best_interleaved_median": statistics.median(paired),
        "ratio_same_policy": {p: None if censored["neurox"][p] or censored["ours"][p]
                              else med["neurox"][p] / med["ours"][p] for p in POLICIES},
        "loadavg_1min_range": [min(loads), max(loads)] if loads else [],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=Path("activations/minilm/base/pos-wsj"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/probe_fair.json"))
    ap.add_argument("--repeats", type=int, default=3, help="rounds of the four runs")
    ap.add_argument("--inner", type=int, default=3, help="fits of ours per process (median)")
    ap.add_argument("--run-timeout", type=float, default=600.0, help="cap per run in seconds (censored beyond)")
    ap.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--resummarise", action="store_true", help="recompute the summary of --out from its runs")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.store, args.inner)))
        return 0
    if args.resummarise:
        old = json.loads(args.out.read_text(encoding="utf-8"))
        keep = ("command", "store", "neurox_settings", "ours_settings", "repeats", "inner", "run_timeout_s", "cpus",
                "censored_runs", "runs")
        write_json(args.out, {**{k: old[k] for k in keep}, **summarise(old["runs"], old["repeats"])})
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    order = [(t, p) for p in reversed(POLICIES) for t in TOOLS]
    runs: list[dict[str, Any]] = []
    for k in range(args.repeats):
        for tool, policy in order if k % 2 == 0 else order[::-1]:
            rec = measure(tool, policy, args.store, args.inner, args.run_timeout)
            runs.append({"round": k, **rec})
            log.info("round %d %-6s OMP_WAIT_POLICY=%-7s %s%.2f s (load %s)", k + 1, tool, policy,
                     ">= " if rec["timed_out"] else "", rec["seconds"], rec["loadavg_after"])
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "store": str(args.store), "neurox_settings": "defaults (l1 = l2 = 0), epochs 10, batch 32, lr 1e-3",
        "ours_settings": "SolverConfig() defaults, all layers at once (as the probe stage)",
        "repeats": args.repeats, "inner": args.inner, "run_timeout_s": args.run_timeout, "cpus": os.cpu_count(),
        "censored_runs": sum(r["timed_out"] for r in runs),
        **summarise(runs, args.repeats), "runs": runs,
    }
    write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
