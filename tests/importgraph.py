"""Static import graph of the project's own modules (``ast`` only: nothing is imported or run).

What counts as an import of a project module:

- ``import a.b.c`` executes ``a``, ``a.b`` and ``a.b.c`` (every package ``__init__`` on the way);
- ``from a.b import c`` executes ``a`` and ``a.b``, and ``a.b.c`` too when ``c`` is a submodule;
- relative imports (``from . import x``, ``from ..y import z``) are resolved against the importing module;
- imports anywhere in a module count (module level, inside functions, classes, ``try`` and ``if``),
  except the body of ``if TYPE_CHECKING:``, which never runs;
- ``importlib.import_module("a.b")`` and ``__import__("a.b")`` with a literal name count as ``import a.b``.

Used by ``tests/test_dvc_deps.py`` (every DVC stage's closure is covered by its ``deps``) and
``tests/test_layering.py``. As a script it prints each stage's closure and what its ``deps`` miss::

    python tests/importgraph.py                     # every stage in dvc.yaml
    python tests/importgraph.py pipeline.stages.probe app   # the closure of some modules
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

log = logging.getLogger("importgraph")

ROOT = Path(__file__).resolve().parents[1]

# Modules that cannot change a result, so no DVC stage has to depend on them. Each must import (in its
# own closure) only modules of this list: otherwise what it imports could change a result unseen.
EXEMPT: dict[str, str] = {
    "pipeline": "package marker: a docstring and __version__ (stamped as provenance, not used in a result)",
    "pipeline.errors": "the error types (message + hint); raising one stops a stage, it computes nothing",
    "pipeline.atomic": "writes a finished file or folder atomically; the bytes are the caller's",
    "pipeline.provenance": "library versions stamped next to results, host facts for the untracked run logs",
    "pipeline.config": "typed params and their validation; the values themselves are tracked as DVC params",
    "pipeline.variants": "checkpoint names (<task>-seed<N>); they name folders, which dvc.yaml's outs name too",
    "pipeline.stages": "the stages namespace: a docstring, no code (cli imports each stage module itself)",
    "pipeline.threads": "OpenMP's wait policy, set before torch loads: how idle threads wait, not what they compute",
}
# The process entry of every stage (``python -m pipeline STAGE``): it parses the command line and calls
# the stage module's entry point. What runs for every command (its module-level imports) must reach
# only EXEMPT modules; its imports inside functions belong to the one command that takes that branch,
# and a stage's own branch leads to its stage module, the root of that stage's closure.
ENTRY: dict[str, str] = {
    "pipeline.__main__": "`python -m pipeline`: sets OMP_WAIT_POLICY and calls cli.main",
    "pipeline.cli": "argument parsing and dispatch to pipeline.stages.<command>",
}


@dataclass(frozen=True)
class Edge:
    """One import statement's effect: ``source`` executes ``target`` (a project module in
    :meth:`ImportGraph.edges`, a dotted third-party name in :meth:`ImportGraph.external`)."""

    source: str
    target: str
    lineno: int
    function_level: bool  # inside a function body (runs when the function is called)


class ImportGraph:
    """The project modules under ``root`` (top-level packages ``packages``) and their import edges."""

    def __init__(self, root: Path, packages: Iterable[str] = ("pipeline", "app")) -> None:
        self.root = Path(root)
        self.files: dict[str, Path] = {}
        for pkg in packages:
            base = self.root / pkg
            if not (base / "__init__.py").is_file():
                continue
            for path in sorted(base.rglob("*.py")):
                if "__pycache__" in path.parts:
                    continue
                parts = path.relative_to(self.root).with_suffix("").parts
                name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                self.files[name] = path
        self._edges: dict[str, list[Edge]] = {}
        self._external: dict[str, list[Edge]] = {}

    # -- modules -----------------------------------------------------------------------------------
    def is_package(self, module: str) -> bool:
        """Whether ``module`` is a package (its file is an ``__init__.py``)."""
        return module in self.files and self.files[module].name == "__init__.py"

    def path(self, module: str) -> str:
        """The module's file relative to the root, POSIX style (``pipeline/stages/probe.py``)."""
        return self.files[module].relative_to(self.root).as_posix()

    def module_of(self, path: str | Path) -> str | None:
        """The module whose file is ``path`` (relative to the root), or None."""
        want = PurePosixPath(Path(path).as_posix())
        for name, file in self.files.items():
            if PurePosixPath(file.relative_to(self.root).as_posix()) == want:
                return name
        return None

    def _chain(self, dotted: str) -> list[str]:
        """``a.b.c`` -> the project modules that ``import a.b.c`` executes: ``a``, ``a.b``, ``a.b.c``."""
        parts = dotted.split(".")
        return [m for m in (".".join(parts[: i + 1]) for i in range(len(parts))) if m in self.files]

    # -- edges -------------------------------------------------------------------------------------
    def edges(self, module: str) -> list[Edge]:
        """Every project module that ``module``'s import statements execute, in source order."""
        self._parse(module)
        return self._edges[module]

    def external(self, module: str) -> list[Edge]:
        """``module``'s imports of anything outside the project (``target``: the dotted name imported,
        ``torch.nn`` for ``import torch.nn``, ``transformers`` for ``from transformers import X``)."""
        self._parse(module)
        return self._external[module]

    def _parse(self, module: str) -> None:
        if module not in self._edges:
            tree = ast.parse(self.files[module].read_text(encoding="utf-8"), filename=str(self.files[module]))
            self._edges[module], self._external[module] = [], []
            self._visit(module, tree.body, False)

    def _add(self, module: str, dotted: str, node: ast.stmt, in_function: bool) -> None:
        """Record ``import dotted`` (a project module chain, or one external name)."""
        chain = self._chain(dotted)
        if chain:
            self._edges[module] += [Edge(module, t, node.lineno, in_function) for t in chain]
        else:
            self._external[module].append(Edge(module, dotted, node.lineno, in_function))

    def _visit(self, module: str, body: list[ast.stmt], in_function: bool) -> None:
        for node in body:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                self._visit(module, node.orelse, in_function)  # the TYPE_CHECKING body never runs
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self._add(module, alias.name, node, in_function)
            elif isinstance(node, ast.ImportFrom):
                base = self._resolve_from(module, node)
                self._add(module, base, node, in_function)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if alias.name != "*" and sub in self.files:
                        self._edges[module].append(Edge(module, sub, node.lineno, in_function))
            else:
                for name in _literal_import_calls(node):
                    self._add(module, name, node, in_function)
            nested = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            for child_body in _bodies(node):
                self._visit(module, child_body, in_function or nested)

    def _resolve_from(self, module: str, node: ast.ImportFrom) -> str:
        """The absolute module a ``from X import ...`` statement names."""
        if node.level == 0:
            return str(node.module)
        package = module if self.is_package(module) else module.rpartition(".")[0]
        parts = package.split(".")
        if node.level - 1 >= len(parts):
            raise ImportError(f"{self.path(module)}:{node.lineno}: relative import beyond the top-level package")
        base = ".".join(parts[: len(parts) - (node.level - 1)])
        return f"{base}.{node.module}" if node.module else base

    # -- closures ----------------------------------------------------------------------------------
    def closure(self, roots: Iterable[str], *, module_level_only: bool = False,
                stop: Iterable[str] = ()) -> dict[str, tuple[str, ...]]:
        """Every project module that importing ``roots`` may execute, each with its import chain
        (``root, ..., module``). ``module_level_only``: follow only imports that run at import time.
        ``stop``: modules reached but not followed further."""
        stop = set(stop)
        seen: dict[str, tuple[str, ...]] = {}
        queue: list[tuple[str, ...]] = []
        for root in roots:
            for m in self._chain(root):  # importing a.b executes a first
                if m not in seen:
                    seen[m] = (m,) if m == root else (root, m)
                    queue.append(seen[m])
        while queue:
            chain = queue.pop(0)
            if chain[-1] in stop:
                continue
            for edge in self.edges(chain[-1]):
                if module_level_only and edge.function_level:
                    continue
                if edge.target not in seen:
                    seen[edge.target] = chain + (edge.target,)
                    queue.append(seen[edge.target])
        return seen


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _bodies(node: ast.AST) -> list[list[ast.stmt]]:
    """The statement lists nested in ``node`` (function and class bodies, branches, handlers)."""
    out = []
    for field in ("body", "orelse", "finalbody", "handlers", "cases"):
        value = getattr(node, field, None)
        if isinstance(value, list) and value:
            if all(isinstance(v, ast.stmt) for v in value):
                out.append(value)
            else:  # except handlers and match cases hold their own bodies
                out += [v.body for v in value if hasattr(v, "body")]
    return out


def _literal_import_calls(node: ast.stmt) -> list[str]:
    """Module names in ``importlib.import_module("x")`` / ``__import__("x")`` calls of one statement
    (not descending into nested statements, which are visited on their own)."""
    found = []
    stack: list[ast.AST] = [c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.stmt)]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant) \
                and isinstance(n.args[0].value, str):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.append(n.args[0].value)
        stack += [c for c in ast.iter_child_nodes(n) if not isinstance(c, ast.stmt)]
    return found


# -- DVC stages ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """A ``dvc.yaml`` stage: its name, command, stage module and the project paths among its deps."""

    name: str
    cmd: str
    module: str
    deps: tuple[str, ...]


def dvc_stages(root: Path) -> list[Stage]:
    """The stages of ``root/dvc.yaml`` whose command is ``python -m pipeline COMMAND ...``."""
    stages = yaml.safe_load((Path(root) / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    out = []
    for name, spec in stages.items():
        spec = spec.get("do", spec)  # a foreach stage's template
        words = str(spec["cmd"]).split()
        if words[:3] != ["python", "-m", "pipeline"] or len(words) < 4:
            raise ValueError(f"stage {name!r}: cmd {spec['cmd']!r} is not `python -m pipeline COMMAND ...`")
        deps = tuple(d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", []))
        out.append(Stage(name, spec["cmd"], f"pipeline.stages.{words[3]}", deps))
    return out


def covered(path: str, deps: Iterable[str]) -> bool:
    """Whether a file ``path`` is one of ``deps`` or lies under a directory among them."""
    p = PurePosixPath(path)
    for dep in deps:
        d = PurePosixPath(dep.rstrip("/"))
        if p == d or d in p.parents:
            return True
    return False


def missing_deps(graph: ImportGraph, stage: Stage, exempt: Mapping[str, str] = EXEMPT) -> dict[str, tuple[str, ...]]:
    """The project files a stage's module reaches that no dep covers: ``{path: import chain}``.
    Exempt modules are not followed: :func:`exempt_violations` checks that they reach only exempt ones."""
    missing = {}
    for module, chain in graph.closure([stage.module], stop=exempt).items():
        if module in exempt:
            continue
        path = graph.path(module)
        if not covered(path, stage.deps):
            missing[path] = chain
    return dict(sorted(missing.items()))


def unneeded_deps(graph: ImportGraph, stage: Stage, exempt: Mapping[str, str] = EXEMPT,
                  package: str = "pipeline") -> list[str]:
    """The stage's code deps (under ``package/``) that cover no module its stage module reaches."""
    reached = [graph.path(m) for m in graph.closure([stage.module], stop=exempt) if m not in exempt]
    return [d for d in stage.deps if PurePosixPath(d).parts[:1] == (package,)
            and not any(covered(p, [d]) for p in reached)]


def exempt_violations(graph: ImportGraph, exempt: Mapping[str, str] = EXEMPT,
                      entry: Mapping[str, str] = ENTRY) -> dict[str, tuple[str, ...]]:
    """Non-exempt modules that an exempt module imports (anywhere), or an entry module imports at
    import time: ``{module: import chain}``."""
    allowed = set(exempt) | set(entry)
    bad = {}
    for module in exempt:
        if module in graph.files:
            for m, chain in graph.closure([module]).items():
                if m not in allowed:
                    bad.setdefault(m, chain)
    for module in entry:
        if module in graph.files:
            for m, chain in graph.closure([module], module_level_only=True).items():
                if m not in allowed:
                    bad.setdefault(m, chain)
    return bad


def suggest(graph: ImportGraph, missing: Iterable[str]) -> list[str]:
    """Ready-to-paste ``deps`` lines: a whole subpackage directory when every file of it is missing
    (never the top-level package or ``pipeline/stages``: a stage depends on its own stage module only)."""
    missing = set(missing)
    lines = []
    for path in sorted(missing):
        parent = PurePosixPath(path).parent
        if len(parent.parts) == 1 or parent.as_posix() == "pipeline/stages":
            lines.append(path)
            continue
        siblings = {graph.path(m) for m in graph.files if PurePosixPath(graph.path(m)).parent == parent}
        lines.append(parent.as_posix() if siblings <= missing else path)
    return sorted(dict.fromkeys(lines))


def report(graph: ImportGraph, stages: Iterable[Stage]) -> str:
    """Per stage, the deps lines it lacks (indented as in dvc.yaml) and why each is needed."""
    blocks = []
    for stage in stages:
        missing = missing_deps(graph, stage)
        if not missing:
            continue
        lines = [f"stage {stage.name!r} ({stage.module}) reaches files its deps do not cover; add to its deps:"]
        for line in suggest(graph, missing):
            why = next(c for p, c in missing.items() if covered(p, [line]))
            lines.append(f"      - {line}  # via {' -> '.join(why)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    """Print every stage's closure (or the closure of the given modules) and the deps it misses."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="print the closure of these modules instead of the stages'")
    ap.add_argument("--root", type=Path, default=ROOT)
    args = ap.parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return _print(args.root, args.modules)
    finally:
        log.removeHandler(handler)


def _print(root: Path, modules: list[str]) -> int:
    graph = ImportGraph(root)
    if modules:
        for module, chain in sorted(graph.closure(modules).items()):
            log.info("%-40s %s", graph.path(module), " -> ".join(chain))
        return 0
    stages = dvc_stages(root)
    for stage in stages:
        log.info("%s  (%s)", stage.name, stage.cmd)
        reached = graph.closure([stage.module], stop=EXEMPT)
        for module, chain in sorted(reached.items(), key=lambda kv: graph.path(kv[0])):
            path = graph.path(module)
            state = "exempt" if module in EXEMPT else "dep" if covered(path, stage.deps) else "MISSING"
            log.info("  %-8s %-36s via %s", state, path, " -> ".join(chain))
    problems = report(graph, stages)
    for stage in stages:
        extra = unneeded_deps(graph, stage)
        if extra:
            problems += f"\n\nstage {stage.name!r}: deps its code does not reach (remove): " + ", ".join(extra)
    bad = exempt_violations(graph)
    if bad:
        problems += "\n\nexempt modules import modules that can change a result:\n" + "\n".join(
            f"  {graph.path(m)}  via {' -> '.join(c)}" for m, c in sorted(bad.items()))
    log.info("\n%s", problems.strip() or "every stage's deps cover its import closure")
    return 1 if problems.strip() else 0


if __name__ == "__main__":
    sys.exit(main())
