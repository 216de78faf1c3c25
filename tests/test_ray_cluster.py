"""`python -m pipeline run --executor ray --address ADDR` on a simulated multi-node Ray cluster
(``ray.cluster_utils.Cluster``: a head and worker nodes on this machine, bound to 127.0.0.1 with the
dashboard off, ``num_gpus`` standing in for GPUs): dependencies are respected, fine-tuning and
extraction land on the GPU nodes, an extraction's probes and neuron analysis run on its node, a node
removed mid-run has its stage retried elsewhere, and a failed stage is reported by name with nothing
half-written. Each test leaves ``dvc status`` as ``dvc repro`` would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_parallel import project

from pipeline.parallel import run_pipeline

ray_cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
# Ray rewrites a 127.0.0.1 address to the machine's interface address before connecting, unless it is told
# that this machine is not part of a real cluster; the simulated cluster listens on 127.0.0.1 only.
DRIVER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_ADDRESS": ""}

# A small DAG in the pipeline's shape (stage names as the pipeline's, through DVC's foreach): a fine-tuning,
# two extractions (GPU kinds), the probe and neuron analysis that read each store, and a report over all of
# them. Every command reads its inputs, so a stage started before its dependencies fails.
def readers(kind: str, cmd: str = "sleep 1 && cat acts-${item}.txt > KIND-${item}.txt && echo KIND >> KIND-${item}.txt"
             ) -> dict:
    return {"foreach": ["a", "b"], "do": {"cmd": cmd.replace("KIND", kind), "deps": ["acts-${item}.txt"],
                                          "outs": [f"{kind}-${{item}}.txt"]}}


DAG = {
    "prepare": {"foreach": ["t"], "do": {"cmd": "echo data > data.txt", "outs": ["data.txt"]}},
    "finetune": {"foreach": ["m-t"], "do": {"cmd": "cat data.txt > model.txt && echo tuned >> model.txt",
                                            "deps": ["data.txt"], "outs": ["model.txt"]}},
    "extract": {"foreach": ["a", "b"], "do": {
        "cmd": "cat model.txt data.txt > acts-${item}.txt && echo ${item} >> acts-${item}.txt",
        "deps": ["model.txt", "data.txt"], "outs": ["acts-${item}.txt"]}},
    "probe": readers("probe"),
    "neurons": readers("neurons"),
    "report": {"cmd": "cat probe-a.txt neurons-a.txt probe-b.txt neurons-b.txt > report.txt",
               "deps": ["probe-a.txt", "neurons-a.txt", "probe-b.txt", "neurons-b.txt"], "outs": ["report.txt"]},
}
STAGES = ["prepare@t", "finetune@m-t", "extract@a", "extract@b", "probe@a", "probe@b", "neurons@a", "neurons@b",
          "report"]


@dataclass
class Sim:
    """The simulated cluster and the ids of its "GPU" nodes."""

    cluster: ray_cluster_utils.Cluster
    gpus: set[str] = field(default_factory=set)

    @property
    def address(self) -> str:
        return self.cluster.address

    def add(self, gpus: int) -> None:
        node = self.cluster.add_node(num_cpus=1, num_gpus=gpus, node_ip_address=LOOPBACK, include_dashboard=False)
        if gpus:
            self.gpus.add(node.node_id)
        self.cluster.wait_for_nodes()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Sim]:
    """A head (1 CPU, no GPU) and two "GPU" workers (1 CPU + 1 GPU each), all on 127.0.0.1."""
    sim = Sim(ray_cluster_utils.Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "node_ip_address": LOOPBACK, "include_dashboard": False}))
    for _ in range(2):
        sim.add(gpus=1)
    yield sim
    sim.cluster.shutdown()


def dvc_status(root: Path) -> str:
    return subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=root, capture_output=True, text=True).stdout


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def run_cli(root: Path, address: str, *args: str) -> subprocess.Popen:
    """``python -m pipeline run --executor ray --address ADDRESS ARGS`` in ``root``, started (not waited for)."""
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    env = {**os.environ, **DRIVER_ENV, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "pipeline", "--params", str(root / "params.yaml"), "run",
                             "--executor", "ray", "--address", address, "-j", "4", *args],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=240)
    return proc.returncode, out


def nodes_of(output: str) -> dict[str, str]:
    """Stage name -> the node id that ran it, from the runner's "done STAGE in S s on node ID" lines."""
    return dict(re.findall(r"done (\S+) in [\d.]+ s on node (\w+)", output))


def test_a_dag_runs_across_nodes_with_gpu_kinds_on_gpu_nodes_and_stores_read_where_written(
        tmp_path: Path, cluster: Sim) -> None:
    root = project(tmp_path / "p", DAG)
    code, output = finish(run_cli(root, cluster.address))
    assert code == 0, output
    assert (root / "report.txt").read_text().count("tuned") == 4  # every stage saw its inputs
    ran = nodes_of(output)
    assert sorted(ran) == sorted(STAGES), output
    gpus = cluster.gpus
    assert len(gpus) == 2 and {ran["finetune@m-t"], ran["extract@a"], ran["extract@b"]} <= gpus
    for v in ("a", "b"):  # an extraction's readers run where its store was written
        assert ran[f"probe@{v}"] == ran[f"neurons@{v}"] == ran[f"extract@{v}"], output
    assert "Data and pipelines are up to date" in dvc_status(root)
    logged = (root / "results" / "runs" / "logs" / "extract@a.log").read_text()
    assert f"# on Ray node {ran['extract@a']}" in logged


def test_a_failed_stage_is_reported_by_name_and_leaves_nothing_half_written(
        tmp_path: Path, cluster: Sim) -> None:
    broken = {**DAG, "probe": readers("probe", 'cat acts-${item}.txt > probe-${item}.txt; '
                                                'if [ ${item} = b ]; then echo "probe broke" >&2; exit 4; fi')}
    root = project(tmp_path / "p", broken)
    code, output = finish(run_cli(root, cluster.address))
    assert code == 1, output
    assert "stage probe@b failed: exit 4" in output and "probe broke" in output
    assert "stage report did not run: it depends on probe@b" in output and "Traceback" not in output
    assert not (root / "probe-b.txt").exists() and not (root / "report.txt").exists()
    assert (root / "neurons-b.txt").exists() and (root / "probe-a.txt").exists()  # the others finished
    status = dvc_status(root)
    assert "probe@b" in status and "report" in status and "neurons@b" not in status and "probe@a" not in status


def test_a_node_removed_mid_run_has_its_stage_retried_on_another_node(
        tmp_path: Path, cluster: Sim) -> None:
    """The first attempt of a fine-tuning records its node and process, then waits; the test removes that
    node; Ray retries the stage on the other GPU node, and the lost attempt's command is gone with it."""
    slow = ('echo "$LINGSHIFT_RAY_NODE $$" >> attempts.txt; '
            'if [ $(wc -l < attempts.txt) -lt 2 ]; then sleep 60; echo late > model.txt; exit 0; fi; '
            'cat data.txt > model.txt')
    root = project(tmp_path / "p", {**DAG, "finetune": {"foreach": ["m-t"], "do": {
        "cmd": slow, "deps": ["data.txt"], "outs": ["model.txt"]}}})
    before = set(cluster.gpus)
    proc = run_cli(root, cluster.address)
    attempts = root / "attempts.txt"
    deadline = time.monotonic() + 120
    while not attempts.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert attempts.exists(), proc.communicate()[0]
    lost_node, lost_pid = attempts.read_text().split()
    victim = next(n for n in cluster.cluster.worker_nodes if n.node_id == lost_node)
    cluster.cluster.remove_node(victim)
    cluster.gpus.discard(lost_node)
    try:
        code, output = finish(proc)
        assert code == 0, output
        lines = attempts.read_text().splitlines()
        assert len(lines) == 2 and lines[1].split()[0] in before - {lost_node}, lines
        ran = nodes_of(output)
        assert ran["finetune@m-t"] == lines[1].split()[0] and lost_node not in ran.values()
        deadline = time.monotonic() + 10  # the lost attempt's shell went with its node
        while alive(int(lost_pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(int(lost_pid))
        assert (root / "model.txt").read_text() == "data\n"
        assert "Data and pipelines are up to date" in dvc_status(root)
    finally:
        cluster.add(gpus=1)


def test_the_embedded_ray_is_a_new_instance_even_with_a_cluster_running(
        tmp_path: Path, cluster: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --address the runner starts its own Ray, never joins the cluster this machine started last."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    root = project(tmp_path / "p", {"prepare": DAG["prepare"]})
    out = run_pipeline(root, jobs=1, executor="ray", on_event=lambda _: None)
    assert out.ok and list(out.ran) == ["prepare@t"]
    cluster_nodes = {cluster.cluster.head_node.node_id} | {n.node_id for n in cluster.cluster.worker_nodes}
    assert out.nodes["prepare@t"] and out.nodes["prepare@t"] not in cluster_nodes
