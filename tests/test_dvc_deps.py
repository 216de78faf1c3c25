"""DVC dependencies derived from the code: every project module a stage's module may import is one of
that stage's ``deps`` (or exempt plumbing that imports nothing else), so that editing it makes
``dvc status`` report the stage. ``make deps`` prints the closures; the checker itself is tested on
small fake packages below."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from importgraph import (
    ENTRY,
    EXEMPT,
    ImportGraph,
    Stage,
    covered,
    dvc_stages,
    exempt_violations,
    missing_deps,
    report,
    suggest,
    unneeded_deps,
)
from importgraph import main as importgraph_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph(ROOT)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dvc_stages(ROOT)


# -- the real pipeline -----------------------------------------------------------------------------
def test_every_stage_depends_on_its_import_closure(graph: ImportGraph, stages: list[Stage]) -> None:
    problems = report(graph, stages)
    assert not problems, "dvc.yaml deps miss project modules the stage imports:\n\n" + problems


def test_exempt_modules_import_only_exempt_modules(graph: ImportGraph) -> None:
    bad = exempt_violations(graph)
    lines = [f"  {graph.path(m)}  via {' -> '.join(chain)}" for m, chain in sorted(bad.items())]
    assert not bad, ("modules exempt from DVC deps (EXEMPT/ENTRY in tests/importgraph.py) reach modules that can "
                     "change a result; move those imports out of them:\n" + "\n".join(lines))


def test_no_stage_depends_on_code_it_does_not_reach(graph: ImportGraph, stages: list[Stage]) -> None:
    extra = {s.name: unneeded_deps(graph, s) for s in stages}
    extra = {name: deps for name, deps in extra.items() if deps}
    assert not extra, f"dvc.yaml deps that no import reaches (stale after a move? remove them): {extra}"


def test_each_stage_command_runs_its_stage_module(graph: ImportGraph, stages: list[Stage]) -> None:
    dispatched = {e.target for e in graph.edges("pipeline.cli")}
    for stage in stages:
        assert stage.module in graph.files, f"stage {stage.name!r}: no module {stage.module} for {stage.cmd!r}"
        assert stage.module in dispatched, f"pipeline/cli.py does not import {stage.module} for {stage.name!r}"
        assert f"pipeline/stages/{stage.name}.py" in stage.deps, stage.name


def test_exempt_lists_name_existing_modules(graph: ImportGraph) -> None:
    assert set(EXEMPT) | set(ENTRY) <= set(graph.files), "a renamed exempt module: update EXEMPT/ENTRY"
    assert all(reason.strip() for reason in (*EXEMPT.values(), *ENTRY.values()))


def test_importgraph_cli_prints_the_closures(capsys: pytest.CaptureFixture[str]) -> None:
    code = importgraph_main(["pipeline.stages.probe"])
    out = capsys.readouterr().out
    assert code == 0 and "pipeline/probing/solver.py" in out
    assert "pipeline.stages.probe -> pipeline.probing.solver" in out


# -- the checker on fake packages ------------------------------------------------------------------
def _project(tmp_path: Path, files: dict[str, str], dvc: dict | None = None) -> ImportGraph:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    if dvc is not None:
        (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": dvc}))
    return ImportGraph(tmp_path, packages=("pkg", "pipeline"))


def test_function_level_import_is_followed(tmp_path: Path) -> None:
    g = _project(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "def f():\n    from pkg import b\n",
                            "pkg/b.py": "import pkg.c\n", "pkg/c.py": ""})
    assert set(g.closure(["pkg.a"])) == {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    assert set(g.closure(["pkg.a"], module_level_only=True)) == {"pkg", "pkg.a"}
    assert g.closure(["pkg.a"])["pkg.c"] == ("pkg.a", "pkg.b", "pkg.c")


def test_relative_imports_resolve_against_the_importing_module(tmp_path: Path) -> None:
    g = _project(tmp_path, {
        "pkg/__init__.py": "", "pkg/d.py": "", "pkg/sub/__init__.py": "from . import e\n", "pkg/sub/e.py": "",
        "pkg/sub/c.py": "from ..d import x\nfrom .e import y\n", "pkg/sub/f.py": "from .. import d\n"})
    assert set(g.closure(["pkg.sub.c"])) == {"pkg", "pkg.sub", "pkg.sub.c", "pkg.d", "pkg.sub.e"}
    assert "pkg.d" in g.closure(["pkg.sub.f"])
    assert "pkg.sub.e" in g.closure(["pkg.sub"])  # `from . import e` in a package's __init__


def test_from_package_import_submodule_vs_name(tmp_path: Path) -> None:
    g = _project(tmp_path, {"pkg/__init__.py": "VERSION = 1\n", "pkg/sub.py": "", "pkg/other.py": "",
                            "pkg/user.py": "from pkg import sub, VERSION\n"})
    assert set(g.closure(["pkg.user"])) == {"pkg", "pkg.user", "pkg.sub"}


def test_package_inits_on_the_way_are_executed(tmp_path: Path) -> None:
    g = _project(tmp_path, {"pkg/__init__.py": "", "pkg/heavy.py": "",
                            "pkg/sub/__init__.py": "from pkg.heavy import thing\n", "pkg/sub/leaf.py": "",
                            "pkg/user.py": "import pkg.sub.leaf\n"})
    assert set(g.closure(["pkg.user"])) == {"pkg", "pkg.user", "pkg.sub", "pkg.sub.leaf", "pkg.heavy"}
    assert set(g.closure(["pkg.sub.leaf"])) == {"pkg", "pkg.sub", "pkg.sub.leaf", "pkg.heavy"}


def test_cycle_terminates(tmp_path: Path) -> None:
    g = _project(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": "from pkg import a\n"})
    assert set(g.closure(["pkg.a"])) == {"pkg", "pkg.a", "pkg.b"} == set(g.closure(["pkg.b"]))


def test_type_checking_imports_do_not_count_and_literal_import_module_does(tmp_path: Path) -> None:
    g = _project(tmp_path, {"pkg/__init__.py": "", "pkg/t.py": "", "pkg/dyn.py": "", "pkg/other.py": "",
                            "pkg/a.py": """\
                                import importlib
                                from typing import TYPE_CHECKING
                                if TYPE_CHECKING:
                                    import pkg.t
                                else:
                                    import pkg.other
                                try:
                                    import torch.nn
                                except ImportError:
                                    mod = importlib.import_module("pkg.dyn")
                                """})
    assert set(g.closure(["pkg.a"])) == {"pkg", "pkg.a", "pkg.other", "pkg.dyn"}
    assert [e.target for e in g.external("pkg.a")] == ["importlib", "typing", "torch.nn"]


def test_covered_by_file_or_directory_never_by_prefix() -> None:
    assert covered("pipeline/corpora/ptb.py", ["pipeline/corpora"])
    assert covered("pipeline/corpora/ptb.py", ["pipeline/corpora/"])
    assert covered("pipeline/probe.py", ["pipeline/probe.py"])
    assert not covered("pipeline/corpora/ptb.py", ["pipeline/corp", "pipeline/corpora.py"])
    assert not covered("pipeline/probe.py", ["pipeline/probe"])


FAKE_PIPELINE = {
    "pipeline/__init__.py": "",
    "pipeline/errors.py": "",
    "pipeline/config.py": "from pipeline.errors import E\n",
    "pipeline/stages/__init__.py": "",
    "pipeline/stages/fit.py": """\
        from pipeline.config import Params
        from . import common

        def fit():
            from pipeline.lib import solve
            from pipeline.data import reader
        """,
    "pipeline/stages/common.py": "",
    "pipeline/lib.py": "from .helper import h\n",
    "pipeline/helper.py": "",
    "pipeline/data/__init__.py": "",
    "pipeline/data/reader.py": "",
    "pipeline/unused.py": "",
}


def test_checker_reports_missing_deps_as_dvc_yaml_lines(tmp_path: Path) -> None:
    dvc = {"fit": {"cmd": "python -m pipeline fit --x ${item.x}",
                   "deps": ["pipeline/stages/fit.py", "pipeline/lib.py", "pipeline/unused.py", "data/x"]}}
    g = _project(tmp_path, FAKE_PIPELINE, dvc)
    [stage] = dvc_stages(tmp_path)
    assert stage.module == "pipeline.stages.fit"
    exempt = {"pipeline": "", "pipeline.errors": "", "pipeline.config": "", "pipeline.stages": ""}
    missing = missing_deps(g, stage, exempt)
    assert set(missing) == {"pipeline/stages/common.py", "pipeline/helper.py", "pipeline/data/__init__.py",
                            "pipeline/data/reader.py"}
    assert missing["pipeline/helper.py"] == ("pipeline.stages.fit", "pipeline.lib", "pipeline.helper")
    assert suggest(g, missing) == ["pipeline/data", "pipeline/helper.py", "pipeline/stages/common.py"]
    assert unneeded_deps(g, stage, exempt) == ["pipeline/unused.py"]
    # the default EXEMPT list (the real project's) applies the same way here
    text = report(g, [stage])
    lines = [line for line in text.splitlines() if line.startswith("      - ")]
    assert yaml.safe_load("\n".join(lines)) == ["pipeline/data", "pipeline/helper.py", "pipeline/stages/common.py"]
    assert "stage 'fit'" in text and "# via pipeline.stages.fit -> pipeline.lib -> pipeline.helper" in text
    # once the lines are pasted, nothing is missing
    dvc["fit"]["deps"] += yaml.safe_load("\n".join(lines))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": dvc}))
    assert report(ImportGraph(tmp_path, packages=("pipeline",)), dvc_stages(tmp_path)) == ""


def test_checker_flags_exempt_module_that_imports_result_code(tmp_path: Path) -> None:
    files = dict(FAKE_PIPELINE)
    files["pipeline/config.py"] = "def presets():\n    from pipeline.lib import PRESETS\n"
    files["pipeline/cli.py"] = "from pipeline.errors import E\n\ndef run():\n    from pipeline.stages import fit\n"
    g = _project(tmp_path, files)
    exempt = {"pipeline": "", "pipeline.errors": "", "pipeline.config": "", "pipeline.stages": ""}
    entry = {"pipeline.cli": ""}
    bad = exempt_violations(g, exempt, entry)
    assert set(bad) == {"pipeline.lib", "pipeline.helper"}  # cli's dispatch inside a function is allowed
    assert bad["pipeline.helper"] == ("pipeline.config", "pipeline.lib", "pipeline.helper")
    files["pipeline/cli.py"] = "from pipeline.stages.fit import fit\n"  # at import time: runs for every command
    assert "pipeline.stages.fit" in exempt_violations(_project(tmp_path, files), exempt, entry)
    # and a stage's closure does not look behind an exempt module: that is this check's job
    files["pipeline/config.py"] = "import pipeline.unused\n"
    dvc = {"fit": {"cmd": "python -m pipeline fit",
                   "deps": ["pipeline/stages", "pipeline/data", "pipeline/lib.py", "pipeline/helper.py"]}}
    g = _project(tmp_path, files, dvc)
    assert missing_deps(g, dvc_stages(tmp_path)[0], exempt) == {}
    assert "pipeline.unused" in exempt_violations(g, exempt, entry)


def test_stage_command_must_be_python_m_pipeline(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"x": {"cmd": "bash run.sh"}}}))
    with pytest.raises(ValueError, match="is not `python -m pipeline COMMAND"):
        dvc_stages(tmp_path)
