"""Layering, checked statically (``ast``, see tests/importgraph.py): what each part of the code may
import, directly or through the project modules it imports (module level or inside functions).

Every rule must check at least one existing module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from importgraph import ImportGraph


@dataclass(frozen=True)
class Rule:
    """``sources`` (modules or packages, any that exist) must not reach any of ``forbidden`` (project or
    third-party modules or packages) through their imports."""

    name: str
    sources: tuple[str, ...]
    forbidden: tuple[str, ...]


RULES: tuple[Rule, ...] = (
    Rule("pipeline never imports app", ("pipeline",), ("app",)),
    Rule("the corpus readers import no torch or transformers", ("pipeline.data",),
         ("torch", "transformers")),
    Rule("probing code imports no transformers",
         ("pipeline.probing",), ("transformers",)),
    Rule("app never reaches fine-tuning or the solver", ("app",), ("pipeline.finetune", "pipeline.probing.solver")),
)
# What app may import from pipeline itself (each with the packages above it, which Python runs on the way).
APP_MAY_IMPORT: tuple[str, ...] = (
    "pipeline.records", "pipeline.layout", "pipeline.probing.linear", "pipeline.extract",
    "pipeline.models", "pipeline.errors", "pipeline.config", "pipeline.names", "pipeline.variants",
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph(ROOT)


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether module ``name`` is one of ``prefixes`` or inside one of them (``a.b`` is inside ``a``)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def reached(graph: ImportGraph, sources: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every module (project or third-party) that the existing ``sources`` may import, with a chain."""
    roots = [m for m in graph.files if within(m, sources)]
    assert roots, f"none of {sources} exists: the rule would check nothing; update its sources"
    found = dict(graph.closure(roots))
    for module, chain in list(found.items()):
        for edge in graph.external(module):
            found.setdefault(edge.target, chain + (edge.target,))
    return found


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_layering_rule(graph: ImportGraph, rule: Rule) -> None:
    bad = sorted(" -> ".join(chain) for name, chain in reached(graph, rule.sources).items()
                 if within(name, rule.forbidden))
    assert not bad, f"{rule.name}, but:\n  " + "\n  ".join(bad)


def app_imports_outside(graph: ImportGraph, may_import: tuple[str, ...] = APP_MAY_IMPORT) -> list[str]:
    """app's own imports of pipeline modules other than ``may_import`` (and the packages above them)."""
    allowed = {".".join(m.split(".")[: i + 1]) for m in may_import for i in range(m.count(".") + 1)}
    return sorted(f"{graph.path(e.source)}:{e.lineno} imports {e.target}"
                  for m in graph.files if within(m, ("app",)) for e in graph.edges(m)
                  if within(e.target, ("pipeline",)) and e.target not in allowed)


def test_app_imports_from_pipeline_only_its_interfaces(graph: ImportGraph) -> None:
    bad = app_imports_outside(graph)
    assert not bad, f"app may import from pipeline only {', '.join(APP_MAY_IMPORT)}, but:\n  " + "\n  ".join(bad)


def test_rules_catch_a_violation(tmp_path: Path) -> None:
    """The same checks on a fake project that breaks each rule once (so none of them passes vacuously)."""
    files = {
        "pipeline/__init__.py": "",
        "pipeline/data/__init__.py": "", "pipeline/data/reader.py": "from pipeline import util\n",
        "pipeline/util.py": "def f():\n    import torch.nn\n",
        "pipeline/probing/__init__.py": "", "pipeline/probing/linear.py": "from .solver import fit\n",
        "pipeline/probing/solver.py": "from transformers import AutoModel\n",
        "pipeline/report.py": "from app.catalog import Catalog\n",
        "app/__init__.py": "", "app/catalog.py": "", "app/api.py": "from pipeline.probing import linear\n",
        "app/page.py": "from pipeline import report\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    fake = ImportGraph(tmp_path)
    failures = set()
    for rule in RULES:
        if any(within(n, rule.forbidden) for n in reached(fake, rule.sources)):
            failures.add(rule.name)
    assert failures == {r.name for r in RULES}
    assert reached(fake, ("pipeline.data",))["torch.nn"] == ("pipeline.data.reader", "pipeline.util", "torch.nn")
    with pytest.raises(AssertionError, match="rule would check nothing"):
        reached(fake, ("pipeline.corpora",))
    assert app_imports_outside(fake) == ["app/page.py:1 imports pipeline.report"]
