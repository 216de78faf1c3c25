"""Stage ``report``: claims, report, metrics and plots from the small result files."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params


def report(params: Params, root: Path) -> Path:
    """Write ``results/report.md``, ``claims.json``, ``metrics.json`` and ``plots/``; return the report path."""
    from pipeline.report import build_report

    return build_report(params, root)["report"]
