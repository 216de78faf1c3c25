"""Regression gate: compare a run's results with a committed baseline, fail when they moved.

``python -m pipeline check`` reads ``results/`` (probe accuracies per layer, fine-tuned task
scores, oracle neuron-probe accuracies, and the claims' verdicts in ``results/claims.json``) and the
baseline file (default ``baselines/<profile>.json``). A metric fails when it moved by more than its tolerance
(absolute accuracy points) in either direction (``--allow-improvements``: only drops fail); a claim
fails when it was SUPPORTED in the baseline and is not now. Exit 0 = within tolerance, 1 = regression,
2 = unusable input (missing files, bad baseline). ``--write-baseline`` records the current run and where it
was recorded (``recorded_on``: CPU model and library versions), so that float noise on another CPU can be
told from a regression. ``--junit PATH`` also writes the compared rows as JUnit XML (one test case per metric
and claim, one test suite per metric family), so that a CI system shows what moved.
"""

from __future__ import annotations

import json
import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.atomic import write_bytes, write_json
from pipeline.errors import LingShiftError
from pipeline.layout import ResultsLayout
from pipeline.records import Results, load_results, read_claims

log = logging.getLogger(__name__)

BASELINE_FORMAT = 1
#: The verdicts a baseline may hold (claims.yaml P1).
VERDICTS = ("SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT_APPLICABLE")
# Default tolerances in accuracy points, per metric family (a baseline file may override them).
DEFAULT_TOLERANCES: dict[str, float] = {"layer_accuracy": 1.0, "finetune_score": 2.0, "oracle_accuracy": 1.0}


class GateError(LingShiftError):
    """The gate cannot compare: a baseline or result file is missing or malformed."""


def current_metrics(res: Results) -> dict[str, float]:
    """Flat ``{metric id: value in points}`` of a results collection.

    Ids: ``layer_accuracy/<model>/<checkpoint>/<task>/<layer>``, ``finetune_score/<model>/<checkpoint>``,
    ``oracle_accuracy/<model>/<checkpoint>/<task>``; a checkpoint is ``base`` or ``<task>-seed<N>``, so every
    fine-tuning seed is gated on its own.
    """
    out: dict[str, float] = {}
    for (m, v, t), r in sorted(res.layers.items()):
        for layer, acc in zip(r.layers, r.mean, strict=True):
            out[f"layer_accuracy/{m}/{v}/{t}/{layer}"] = round(100 * float(acc), 3)
    for (m, c), f in sorted(res.finetune.items()):
        out[f"finetune_score/{m}/{c}"] = round(100 * f.score, 3)
    for (m, v, t), n in sorted(res.neurons.items()):
        out[f"oracle_accuracy/{m}/{v}/{t}"] = round(100 * n.oracle_test, 3)
    return out


def current_claims(results_dir: Path) -> dict[str, str]:
    """``{claim id: verdict}`` from ``results/claims.json`` (written by the report stage)."""
    claims = read_claims(results_dir)
    if claims is None:
        raise GateError(f"{ResultsLayout(Path(results_dir)).claims} not found",
                        "Run the report stage first: dvc repro (or python -m pipeline report).")
    return claims.verdicts()


def make_baseline(results_dir: Path, profile: str, tolerances: dict[str, float] | None = None) -> dict[str, Any]:
    """A baseline record of the results in ``results_dir`` (metrics, claim verdicts, tolerances, recorded_on)."""
    from pipeline.provenance import cpu_model, library_versions

    res = load_results(results_dir)
    metrics = current_metrics(res)
    if not metrics:
        raise GateError(f"no results under {results_dir} to make a baseline from", "Run dvc repro first.")
    return {"format": BASELINE_FORMAT, "profile": profile,
            "note": "Regression-gate baseline: values in accuracy points; tolerances are absolute points per metric "
                    "family (add 'overrides': {metric id: tolerance} for single metrics). Regenerate with "
                    "python -m pipeline check --write-baseline.",
            "tolerances": {**DEFAULT_TOLERANCES, **(tolerances or {})}, "overrides": {},
            "metrics": metrics, "claims": current_claims(results_dir),
            "recorded_on": {"cpu": cpu_model(), "versions": library_versions()}}


def load_baseline(path: Path) -> dict[str, Any]:
    """Read and validate a baseline file."""
    path = Path(path)
    if not path.is_file():
        raise GateError(f"baseline {path} not found",
                        "Create it from a trusted run: python -m pipeline check --write-baseline")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise GateError(f"baseline {path} is not valid JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise GateError(f"baseline {path} is not a format-{BASELINE_FORMAT} LingShift baseline",
                        "Regenerate it: python -m pipeline check --write-baseline")
    for key, kind in (("metrics", dict), ("tolerances", dict), ("claims", dict)):
        if not isinstance(data.get(key), kind):
            raise GateError(f"baseline {path}: field {key!r} missing or not a mapping")
    bad = [k for k, v in {**data["tolerances"], **data.get("overrides", {})}.items()
           if not isinstance(v, int | float) or v < 0 or math.isnan(v)]
    if bad:
        raise GateError(f"baseline {path}: tolerances {bad} must be non-negative numbers (accuracy points)")
    old = sorted(cid for cid, v in data["claims"].items() if v not in VERDICTS)
    if old:
        raise GateError(f"baseline {path}: claims {old} hold {[data['claims'][c] for c in old]}, not verdicts "
                        f"({', '.join(VERDICTS)}); it predates claims.yaml",
                        "Regenerate it: python -m pipeline check --write-baseline")
    return data


@dataclass(frozen=True)
class Row:
    """One compared metric or claim."""

    name: str
    baseline: str
    current: str
    delta: str
    tolerance: str
    status: str  # ok | REGRESSION | MISSING | new | improved

    @property
    def failed(self) -> bool:
        return self.status in ("REGRESSION", "MISSING")

    @property
    def family(self) -> str:
        """``claims`` for a claim, else the metric family (the id's first part, e.g. ``layer_accuracy``)."""
        return "claims" if self.name.startswith("claim ") else self.name.split("/", 1)[0]

    @property
    def compared(self) -> bool:
        """Whether both sides had a value (a ``new`` metric or a claim missing from the run had not)."""
        return "-" not in (self.baseline, self.current) and "MISSING" not in (self.baseline, self.current)


def compare(baseline: dict[str, Any], metrics: dict[str, float], claims: dict[str, str],
            allow_improvements: bool = False, tolerance_overrides: dict[str, float] | None = None) -> list[Row]:
    """Compare current ``metrics``/``claims`` with ``baseline``; one :class:`Row` per metric and claim."""
    tol_family = {**baseline["tolerances"], **(tolerance_overrides or {})}
    tol_single = baseline.get("overrides", {})
    rows = []
    for name, base in baseline["metrics"].items():
        family = name.split("/", 1)[0]
        tol = float(tol_single.get(name, tol_family.get(family, DEFAULT_TOLERANCES.get(family, 1.0))))
        if name not in metrics:
            rows.append(Row(name, f"{base:.2f}", "-", "-", f"{tol:g}", "MISSING"))
            continue
        d = metrics[name] - base
        status = "ok" if abs(d) <= tol + 1e-9 else ("improved" if d > 0 and allow_improvements else "REGRESSION")
        rows.append(Row(name, f"{base:.2f}", f"{metrics[name]:.2f}", f"{d:+.2f}", f"{tol:g}", status))
    for name in sorted(set(metrics) - set(baseline["metrics"])):
        rows.append(Row(name, "-", f"{metrics[name]:.2f}", "-", "-", "new"))
    for cid, base in sorted(baseline["claims"].items()):
        now = claims.get(cid, "MISSING")
        status = ("REGRESSION" if base == "SUPPORTED" and now != "SUPPORTED"
                  else "improved" if now == "SUPPORTED" != base else "ok")
        rows.append(Row(f"claim {cid}", base, now, "-" if now == base else "changed", "SUPPORTED must stay", status))
    return rows


def format_table(rows: list[Row], only_problems: bool = False) -> str:
    """A fixed-width table of ``rows`` (all, or only failures and changes) and a one-line summary."""
    shown = [r for r in rows if not only_problems or r.status != "ok"]
    header = Row("metric", "baseline", "current", "delta", "tolerance", "status")
    widths = [max(len(getattr(r, f)) for r in [header, *shown]) for f in Row.__dataclass_fields__]
    lines = ["  ".join(getattr(r, f).ljust(w) for f, w in zip(Row.__dataclass_fields__, widths, strict=True)).rstrip()
             for r in [header, *shown]]
    n_fail = sum(r.failed for r in rows)
    n_ok = sum(r.status == "ok" for r in rows)
    lines.append(f"{len(rows)} compared: {n_ok} ok, {n_fail} regressed or missing, "
                 f"{sum(r.status == 'new' for r in rows)} new, {sum(r.status == 'improved' for r in rows)} improved"
                 f" -> {'FAIL' if n_fail else 'PASS'}")
    return "\n".join(lines)


def run_check(results_dir: Path, baseline_path: Path, allow_improvements: bool = False,
              tolerance_overrides: dict[str, float] | None = None, only_problems: bool = False,
              junit: Path | None = None) -> tuple[int, str]:
    """The gate: ``(exit code, table)``; 0 within tolerance, 1 regression (errors raise :class:`GateError`).

    ``junit``: also write the same rows there as JUnit XML (:func:`write_junit`)."""
    baseline = load_baseline(baseline_path)
    res = load_results(results_dir)
    rows = compare(baseline, current_metrics(res), current_claims(results_dir), allow_improvements,
                   tolerance_overrides)
    table = format_table(rows, only_problems)
    note = recorded_elsewhere(baseline)
    if junit is not None:
        write_junit(junit, rows, note)
    return (1 if any(r.failed for r in rows) else 0), table + (f"\n{note}" if note else "")


#: Test suites in this order (metric families, then the claims); other families follow, sorted.
SUITE_ORDER = (*DEFAULT_TOLERANCES, "claims")


def _message(row: Row) -> str:
    """What a failure or a skip says: the row's baseline, current value, delta and tolerance."""
    if row.family == "claims":
        return (f"baseline {row.baseline}, current {row.current}, delta {row.delta}, tolerance: a claim SUPPORTED "
                "in the baseline must stay SUPPORTED")
    if row.status == "MISSING":
        return (f"baseline {row.baseline}, current missing (no result for this metric), delta -, "
                f"tolerance {row.tolerance} (accuracy points)")
    if row.status == "new":
        return f"baseline missing (a new metric, not gated), current {row.current}, delta -, tolerance -"
    return (f"baseline {row.baseline}, current {row.current}, delta {row.delta}, "
            f"tolerance {row.tolerance} (accuracy points)")


def junit_xml(rows: list[Row], note: str | None = None) -> ET.Element:
    """The rows as a JUnit ``<testsuites>`` tree: one ``<testsuite>`` per family, one ``<testcase>`` per row.

    A failed row (REGRESSION, MISSING) gets a ``<failure>``; a row with a value on one side only that does
    not fail (a new metric, a non-SUPPORTED claim absent now) gets ``<skipped>``; an improvement passes with
    its values in ``<system-out>``. ``note`` (:func:`recorded_elsewhere`) goes into every failure's text.
    """
    families = sorted({r.family for r in rows},
                      key=lambda f: (SUITE_ORDER.index(f) if f in SUITE_ORDER else len(SUITE_ORDER), f))
    stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    top = ET.Element("testsuites", name="lingshift check")
    for family in families:
        mine = [r for r in rows if r.family == family]
        suite = ET.SubElement(top, "testsuite", name=family, timestamp=stamp)
        for r in mine:
            case = ET.SubElement(suite, "testcase", name=r.name.removeprefix("claim "),
                                 classname=f"lingshift.{family}", time="0")
            if r.failed:
                fail = ET.SubElement(case, "failure", message=f"{r.status}: {_message(r)}", type=r.status)
                fail.text = f"{r.name}: {_message(r)}" + (f"\n{note}" if note else "")
            elif not r.compared:
                ET.SubElement(case, "skipped", message=_message(r))
            elif r.status != "ok":
                ET.SubElement(case, "system-out").text = f"{r.status}: {_message(r)}"
        _count(suite, mine)
    _count(top, rows)
    ET.indent(top)
    return top


def _count(element: ET.Element, rows: list[Row]) -> None:
    element.set("tests", str(len(rows)))
    element.set("failures", str(sum(r.failed for r in rows)))
    element.set("errors", "0")
    element.set("skipped", str(sum(not r.failed and not r.compared for r in rows)))
    element.set("time", "0")


def write_junit(path: Path, rows: list[Row], note: str | None = None) -> Path:
    """Write :func:`junit_xml` of ``rows`` to ``path`` (atomically)."""
    data = ET.tostring(junit_xml(rows, note), encoding="utf-8", xml_declaration=True) + b"\n"
    write_bytes(Path(path), data)
    log.debug("JUnit report: %d test cases, %d failed -> %s", len(rows), sum(r.failed for r in rows), path)
    return Path(path)


def write_junit_error(path: Path, err: Exception) -> Path:
    """A JUnit report of a gate that could not compare (exit 2): one test case ``inputs`` with an ``<error>``
    that says what is wrong and what to do, so that the CI report shows why instead of no report."""
    top = ET.Element("testsuites", name="lingshift check", tests="1", failures="0", errors="1", skipped="0",
                     time="0")
    suite = ET.SubElement(top, "testsuite", name="gate", tests="1", failures="0", errors="1", skipped="0", time="0",
                          timestamp=datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"))
    case = ET.SubElement(suite, "testcase", name="inputs", classname="lingshift.gate", time="0")
    ET.SubElement(case, "error", message=str(err), type=type(err).__name__).text = str(err)
    ET.indent(top)
    write_bytes(Path(path), ET.tostring(top, encoding="utf-8", xml_declaration=True) + b"\n")
    return Path(path)


def recorded_elsewhere(baseline: dict[str, Any]) -> str | None:
    """A note when the baseline was recorded on another CPU model (differences may be float noise), else None."""
    from pipeline.provenance import cpu_model

    where = baseline.get("recorded_on") or {}
    here = cpu_model()
    if where.get("cpu") and where["cpu"] != here:
        return (f"note: the baseline was recorded on {where['cpu']}, this run is on {here}: small differences can "
                "be floating-point noise from another CPU")
    return None


def write_baseline(results_dir: Path, baseline_path: Path, profile: str,
                   tolerances: dict[str, float] | None = None) -> Path:
    """Record the current results as the baseline (atomically)."""
    write_json(Path(baseline_path), make_baseline(results_dir, profile, tolerances))
    return Path(baseline_path)


def parse_tolerances(items: list[str] | None) -> dict[str, float]:
    """``["layer_accuracy=1.5", ...]`` -> ``{"layer_accuracy": 1.5}`` (clear error on bad input)."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            v = float(value)
        except ValueError:
            v = float("nan")
        if not sep or not name or math.isnan(v) or v < 0:
            raise GateError(f"--tolerance {item!r} is not FAMILY=POINTS",
                            f"e.g. --tolerance layer_accuracy=1.5 (families: {', '.join(DEFAULT_TOLERANCES)})")
        out[name] = v
    return out
