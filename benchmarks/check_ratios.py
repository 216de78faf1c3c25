"""The CI ratio gate: fail when a benchmark's same-run ratio worsens beyond a tolerance against the baseline.

pytest-benchmark's ``--benchmark-compare-fail`` compares absolute times, which move with the machine and its
load. Every benchmark here also records ratios measured in the same run (``extra_info["ratio_*"]``, each
oriented so that higher is better for LingShift: ours' speed as a share of the bare forward's, NeuroX's time over
ours, ...). This compares those against the committed baseline (benchmarks/baseline/) and fails when one fell
below ``baseline * (1 - tolerance)``. A benchmark missing from the current run (skipped: no NeuroX, no
fine-tuned weights) is listed, not failed.

Same-run ratios still depend on the CPU's microarchitecture: the same code (3e7b90f and 0c02383 alike) gave
all-layer probes at 0.52 of the dense reference on a Zen 3 EPYC and 0.22-0.25 on an AVX-512 Xeon (the Xeon's
float32 ``bmm`` is faster, the probe's many small element-wise steps slower). So the baseline folder holds one
file per CPU class, and the gate compares a run with the baseline recorded on the same class (vendor, family,
model from pytest-benchmark's ``machine_info``); failing that, one of the same vendor; failing that, per ratio
the lowest baseline recorded (said in the output). Usage::

    python benchmarks/check_ratios.py benchmarks/baseline/Linux-CPython-3.11-64bit/*.json \\
        current.json --tolerance 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.errors import LingShiftError  # noqa: E402

#: Default tolerance: a ratio may fall to half its baseline before the gate fails. Wide on purpose: ratios from
#: interleaved rounds cancel most of a shared machine's load, not all of it.
DEFAULT_TOLERANCE = 0.5


@dataclass(frozen=True)
class RatioCheck:
    """One ratio of one benchmark: its baseline and current value (``None``: the benchmark did not run)."""

    benchmark: str
    key: str
    baseline: float
    current: float | None
    tolerance: float

    @property
    def floor(self) -> float:
        return self.baseline * (1 - self.tolerance)

    @property
    def failed(self) -> bool:
        return self.current is not None and self.current < self.floor


def load(path: Path) -> dict[str, Any]:
    """A pytest-benchmark JSON file (saved or --benchmark-json) as a dict with a ``benchmarks`` list."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data["benchmarks"], list):
            raise TypeError("'benchmarks' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise LingShiftError(f"{path}: not a readable pytest-benchmark JSON file ({err})",
                             "Pass a file written by pytest --benchmark-json or --benchmark-save.") from err
    return data


def ratios(data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{benchmark fullname: {ratio key: value}}`` of a loaded pytest-benchmark file."""
    return {b["fullname"]: {k: float(v) for k, v in (b.get("extra_info") or {}).items() if k.startswith("ratio_")}
            for b in data["benchmarks"]}


def cpu_class(data: dict[str, Any]) -> tuple[str, str, str]:
    """``(vendor, family, model)`` of the CPU a pytest-benchmark file was recorded on (``"?"`` where unknown)."""
    cpu = (data.get("machine_info") or {}).get("cpu") or {}
    return (str(cpu.get("vendor_id_raw") or "?"), str(cpu.get("family", "?")), str(cpu.get("model", "?")))


def pick_baseline(baselines: dict[str, dict[str, Any]], current: dict[str, Any]
                  ) -> tuple[dict[str, dict[str, float]], str]:
    """The ratios to gate ``current`` against, from ``{path: loaded baseline}``, and a line saying which.

    The baseline of the same CPU class (vendor, family, model) when one was recorded, else one of the same
    vendor, else per ratio the lowest of all baselines (the loosest: an unknown machine class)."""
    cls = cpu_class(current)
    for match, how in ((lambda c: c == cls, "same CPU class"), (lambda c: c[0] == cls[0], "same vendor only")):
        hits = [p for p, d in sorted(baselines.items()) if match(cpu_class(d))]
        if hits:
            return ratios(baselines[hits[0]]), f"baseline {hits[0]} ({how}: {'/'.join(cls)})"
    merged: dict[str, dict[str, float]] = {}
    for d in baselines.values():
        for name, r in ratios(d).items():
            for key, value in r.items():
                merged.setdefault(name, {})[key] = min(value, merged.get(name, {}).get(key, value))
    return merged, (f"no baseline recorded on this CPU class ({'/'.join(cls)}): each ratio against the lowest of "
                    f"{len(baselines)} baselines; record one on a quiet machine of it: "
                    f"`make bench-baseline BENCH_CLASS=name`")


def compare(baseline: dict[str, dict[str, float]], current: dict[str, dict[str, float]],
            tolerance: float) -> list[RatioCheck]:
    """One :class:`RatioCheck` per ratio in ``baseline`` (benchmark names without their directory prefix match)."""
    if not 0 <= tolerance < 1:
        raise LingShiftError(f"tolerance {tolerance}: must be in [0, 1)", "Pass e.g. --tolerance 0.5 (50%).")
    by_tail = {name.rsplit("/", 1)[-1]: r for name, r in current.items()}
    out = []
    for name, base in sorted(baseline.items()):
        cur = current.get(name, by_tail.get(name.rsplit("/", 1)[-1]))
        out.extend(RatioCheck(name, key, value, None if cur is None else cur.get(key), tolerance)
                   for key, value in sorted(base.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", type=Path, nargs="+", metavar="FILE",
                    help="the committed baselines (benchmarks/baseline/*/*.json), then this run's --benchmark-json")
    ap.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                    help=f"allowed relative fall of each ratio (default {DEFAULT_TOLERANCE})")
    args = ap.parse_args(argv)
    if len(args.files) < 2:
        ap.error("pass at least one baseline file and this run's file")
    try:
        current = load(args.files[-1])
        base, which = pick_baseline({str(p): load(p) for p in args.files[:-1]}, current)
        checks = compare(base, ratios(current), args.tolerance)
    except LingShiftError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not checks:
        print(f"error: {which} records no ratio_* values; nothing to gate", file=sys.stderr)
        return 2
    print(which)
    for c in checks:
        status = "skipped (not run)" if c.current is None else ("FAIL" if c.failed else "ok")
        cur = "-" if c.current is None else f"{c.current:.3f}"
        print(f"{status:18} {c.benchmark} {c.key}: {cur} (baseline {c.baseline:.3f}, floor {c.floor:.3f})")
    failed = [c for c in checks if c.failed]
    ran = [c for c in checks if c.current is not None]
    print(f"{len(ran)} ratios checked, {len(failed)} below baseline x (1 - {args.tolerance:g}), "
          f"{len(checks) - len(ran)} not run")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
