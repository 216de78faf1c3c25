"""OpenMP's wait policy (pipeline/threads.py): PASSIVE only where other work keeps the cores busy, a user's own
setting kept, and `python -m pipeline` applying it before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.threads import ENV, apply_wait_policy, busy, wait_policy


@pytest.mark.parametrize(("env", "load", "expected"), [
    ({}, 0.2, None),                                    # auto, quiet: OpenMP's default (faster)
    ({}, 1.6, "PASSIVE"),                               # auto, the 2 cores busy: no spinning
    ({ENV: "passive"}, 0.0, "PASSIVE"),
    ({ENV: "default"}, 9.0, None),
    ({ENV: " Auto "}, 1.6, "PASSIVE"),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, 9.0, "ACTIVE"),    # the user's own setting wins
    ({"OMP_WAIT_POLICY": "ACTIVE", ENV: "passive"}, 0.0, "ACTIVE"),
])
def test_wait_policy(env: dict[str, str], load: float, expected: str | None) -> None:
    assert wait_policy(env, load=load, n_cores=2) == expected


def test_an_unknown_mode_falls_back_to_auto(caplog: pytest.LogCaptureFixture) -> None:
    assert wait_policy({ENV: "sometimes"}, load=5.0, n_cores=2) == "PASSIVE"
    assert "is not one of auto, passive, default" in caplog.text


def test_busy_is_the_load_against_the_cores() -> None:
    assert busy(1.5, 2) and not busy(1.4, 2) and busy(7.6, 8)


def test_apply_sets_only_a_chosen_policy() -> None:
    env = {ENV: "default"}
    assert apply_wait_policy(env) is None and "OMP_WAIT_POLICY" not in env
    env = {ENV: "passive"}
    assert apply_wait_policy(env) == "PASSIVE" and env["OMP_WAIT_POLICY"] == "PASSIVE"


@pytest.mark.parametrize(("mode", "expected"), [("passive", "PASSIVE"), ("default", "None")])
def test_python_m_pipeline_applies_it_before_torch_loads(mode: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = ("import runpy, sys, os; sys.argv = ['pipeline', 'tasks'];\n"
            "try:\n    runpy.run_module('pipeline', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('POLICY', os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env={**env, ENV: mode}, capture_output=True, text=True,
                         check=True).stdout
    assert f"POLICY {expected} False" in out
