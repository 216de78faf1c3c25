"""pytest-benchmark setup for ``pytest --benchmark-only benchmarks`` (not part of ``make test``, which collects tests/).

The benchmark modules are named ``bench_*.py`` (they double as scripts); this collects them. Every benchmark
runs with ``OMP_WAIT_POLICY=PASSIVE`` unless the caller set it (set here, before torch starts OpenMP): the
setting ``python -m pipeline`` and the API run under, and the one the committed baseline
(benchmarks/baseline/) was recorded with. The fair tool-against-tool comparison, where each tool gets its
own best policy, is benchmarks/probe_fair.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's pipeline/ and app/ first


def pytest_collect_file(file_path: Path, parent: Any) -> pytest.Module | None:
    """Collect ``benchmarks/bench_*.py`` (pytest's default pattern is ``test_*.py``); a file named on the
    command line is collected by pytest itself."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") \
            and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
