"""The example CI workflow (examples/ci/lingshift-gate.yml): a valid GitHub Actions file whose steps call
commands and options that exist, and whose gate step, run as written on constructed results, passes a clean
run, fails a regression and leaves the JUnit report where the upload step looks for it."""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from resultkit import DROP_TOP, offline_like, write_claims, write_layers

from pipeline import check
from pipeline.cli import main

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "examples" / "ci" / "lingshift-gate.yml"
CLI = ("lingshift", "python -m pipeline")  # the console script (pyproject) and the module: the same command line
RUNS_PIPELINE = ("make repro", "python -m pipeline run", "lingshift run", "dvc repro")


def _steps() -> list[dict[str, Any]]:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert doc.get("on", doc.get(True)), "the workflow has triggers (YAML 1.1 reads the key `on` as True)"
    (job,) = doc["jobs"].values()
    assert job["runs-on"] and job["steps"]
    return job["steps"]


def _commands() -> list[str]:
    """Every shell command of the workflow's `run:` steps (comments and blank lines dropped)."""
    lines = [line.split(" #", 1)[0].strip() for step in _steps() if "run" in step for line in step["run"].splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _uses(action: str) -> list[dict[str, Any]]:
    return [s for s in _steps() if s.get("uses", "").split("@")[0] == action]


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return {m for line in re.findall(r"^([A-Za-z0-9_.\- ]+):(?!=)", text, re.M) for m in line.split()}


def _cli_args(command: str) -> list[str] | None:
    """The arguments after ``lingshift`` / ``python -m pipeline``, or None for another command."""
    for prefix in CLI:
        if command == prefix or command.startswith(prefix + " "):
            return shlex.split(command[len(prefix):])
    return None


def _gate_command() -> list[str]:
    (args,) = [a for c in _commands() if (a := _cli_args(c)) and a[0] == "check"]
    return args


def test_workflow_has_the_steps_a_user_needs() -> None:
    assert len(_uses("actions/checkout")) == 1
    (python,) = _uses("actions/setup-python")
    assert str(python["with"]["python-version"]) == "3.11"
    (cache,) = _uses("actions/cache")
    assert cache["with"]["path"] == "~/.cache/lingshift"
    assert any(re.fullmatch(r"python -m pip install (-e )?\.", c) for c in _commands()), "installs this checkout"
    assert any(c.startswith(RUNS_PIPELINE) for c in _commands()), "runs the pipeline"
    # the order a user needs: install, run, gate
    steps = (lambda c: "pip install" in c, lambda c: c.startswith(RUNS_PIPELINE),
             lambda c: (_cli_args(c) or [""])[0] == "check")
    order = [next(i for i, c in enumerate(_commands()) if test(c)) for test in steps]
    assert order == sorted(order)


def test_gate_step_writes_junit_and_upload_keeps_it_on_failure() -> None:
    args = _gate_command()
    assert "--junit" in args and "--only-problems" in args
    report = args[args.index("--junit") + 1]
    (upload,) = _uses("actions/upload-artifact")
    assert upload["with"]["path"] == report
    # a failed gate step must not skip the upload (the default `if` is success())
    assert re.search(r"always\(\)|!cancelled\(\)|failure\(\)", str(upload.get("if", "")))


def test_every_command_exists(capsys: pytest.CaptureFixture[str]) -> None:
    targets = _make_targets()
    assert "repro" in targets, "the Makefile parse found the README's targets"
    seen = 0
    for command in _commands():
        words = shlex.split(command)
        if words[0] == "make":
            assert set(words[1:]) <= targets, command
            seen += 1
        elif (args := _cli_args(command)) is not None:
            with pytest.raises(SystemExit) as done:  # an unknown command exits 2 here
                main([args[0], "--help"])
            assert done.value.code == 0, command
            usage = capsys.readouterr().out
            for option in (a.split("=", 1)[0] for a in args[1:] if a.startswith("-")):
                assert re.search(rf"(^|[\s\[,]){re.escape(option)}\b", usage), f"{command}: {option} is not an option"
            seen += 1
    assert seen >= 3  # profile, run, check at least


def test_gate_step_as_written_passes_then_fails_a_regression(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    offline_like(results)
    write_claims(results)
    check.write_baseline(results, tmp_path / "baselines" / "offline.json", "offline")
    (tmp_path / "params.yaml").write_text("profile: offline\npaths:\n  results: results\n")
    monkeypatch.chdir(tmp_path)  # the job's working directory: the checkout
    args = ["--params", "params.yaml", *_gate_command()]
    report = tmp_path / args[args.index("--junit") + 1]
    assert main(args) == 0
    assert ET.parse(report).getroot().get("failures") == "0"
    write_layers(results, "minilm", "base", "pos-wsj", DROP_TOP)  # the base model lost up to 6 points on top
    assert main(args) == 1
    assert ET.parse(report).getroot().get("failures") == "3"
    assert "REGRESSION" in capsys.readouterr().out
