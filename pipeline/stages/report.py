"""Stage ``report``: claims, report, metrics and plots from the small result files."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import Params

log = logging.getLogger(__name__)


def report(params: Params, root: Path) -> Path:
    """Write ``results/report.md``, ``claims.json``, ``metrics.json`` and ``plots/``; return the report path.

    The stages' run times (run facts, kept out of the committed report) are shown on the console.
    """
    from pipeline.report import build_report, run_times

    out = build_report(params, root)["report"]
    log.info("run times (results/runs/, not part of the report):\n  %s", "\n  ".join(run_times(params, root)))
    return out
