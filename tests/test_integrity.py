"""Integrity of what the API serves: each result and probe file is parsed and checked against dvc.lock, a bad
file leaves out only its own unit (named, never by server path), and models load safely from several threads.

Each test serves its own copy of the ``api_root`` checkout, so it can damage files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from app.catalog import Catalog
from app.integrity import bytes_md5, folder_md5, read_folder, recorded_md5s
from app.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
OK = {"sentence": "The cat sat on the mat .", "model": "minilm", "task": "pos-wsj"}
GETS = ("/", "/readyz", "/v1/models", "/v1/results?limit=500", "/v1/neurons", "/v1/claims", "/v1/provenance")


@pytest.fixture
def root(api_root: Path, tmp_path: Path) -> Path:
    """A private copy of the served checkout (weights stay symlinks)."""
    out = tmp_path / "served"
    shutil.copytree(api_root, out, symlinks=True)
    return out


def client(root: Path) -> Any:
    return create_app(Settings(root=root)).test_client()


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def no_server_path(root: Path, body: str) -> None:
    for path in (str(root), str(root.parent), str(REPO)):
        assert path not in body, f"server path {path} in {body[:300]}"


def layer_units(root: Path) -> list[str]:
    return sorted(f"{f.parent.parent.name}/{f.parent.name}/{f.stem}" for f in root.glob("results/layers/*/*/*.json"))


# ---------------------------------------------------------------------------- the lock's hashes


def test_md5s_are_dvcs(api_root: Path) -> None:
    """File md5 as dvc.lock records it (a committed result), folder md5 as dvc-data computes it."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    recorded = recorded_md5s(REPO / "dvc.lock")
    rel = "results/layers/minilm/base/pos-wsj.json"
    assert recorded is not None and bytes_md5((REPO / rel).read_bytes()) == recorded[rel]
    folder = api_root / "results/probes/minilm/base/pos-wsj"
    tree = Tree()
    for f in sorted(folder.iterdir()):
        tree.add((f.name,), None, HashInfo("md5", bytes_md5(f.read_bytes())))
    tree.digest()
    assert folder_md5(read_folder(folder)) == tree.hash_info.value
    assert recorded_md5s(api_root / "no.lock") is None


def test_intact_checkout_is_ready(root: Path) -> None:
    r = client(root).get("/readyz")
    assert r.status_code == 200 and r.get_json()["status"] == "ready" and r.get_json()["degraded"] == []
    assert client(root).get("/v1/results").get_json()["omitted"] == []


# ---------------------------------------------------------------------------- one bad result file


def test_truncated_layer_results_leave_out_only_their_unit(root: Path) -> None:
    units = layer_units(root)
    truncate(root / "results/layers/minilm/base/pos-wsj.json")
    c = client(root)

    ready = c.get("/readyz")
    body = ready.get_json()
    assert ready.status_code == 200 and body["status"] == "degraded"
    (note,) = [d for d in body["degraded"] if "minilm/base/pos-wsj" in d]
    assert note.startswith("layers of minilm/base/pos-wsj left out: the file is not valid JSON")
    assert body["results"]["layers"] == len(units) - 1
    no_server_path(root, ready.get_data(as_text=True))

    res = c.get("/v1/results?limit=500").get_json()
    assert {f"{i['model']}/{i['variant']}/{i['task']}" for i in res["items"]} == set(units) - {"minilm/base/pos-wsj"}
    assert res["total"] == 7 * (len(units) - 1)
    assert [(o["kind"], o["unit"]) for o in res["omitted"]] == [("layers", "minilm/base/pos-wsj")]
    assert "not valid JSON" in res["omitted"][0]["problem"]
    assert c.get("/v1/results?task=chunk-wsj").get_json()["omitted"] == []  # the note follows the filters
    assert len(c.get("/v1/neurons").get_json()["items"]) == len(list(root.glob("results/neurons/*/*/*.json")))
    (model,) = c.get("/v1/models").get_json()["models"]
    base = next(v for v in model["variants"] if v["name"] == "base")
    assert model["n_layers"] == 7 and base["tasks"] == ["chunk-wsj"]


def test_a_file_that_differs_from_the_lock_is_left_out(root: Path) -> None:
    f = root / "results/layers/minilm/sentiment-seed42/chunk-wsj.json"
    data = json.loads(f.read_text())
    data["lexical_baseline"]["test_accuracy"] = 0.5  # still a valid result, but not the one the pipeline wrote
    f.write_text(json.dumps(data))
    c = client(root)
    body = c.get("/readyz").get_json()
    assert body["status"] == "degraded"
    assert any(d.startswith("layers of minilm/sentiment-seed42/chunk-wsj left out: its md5 differs from the one "
                            "dvc.lock records") for d in body["degraded"])
    res = c.get("/v1/results?variant=sentiment-seed42").get_json()
    assert {i["task"] for i in res["items"]} == {"pos-wsj"}
    assert res["omitted"][0]["unit"] == "minilm/sentiment-seed42/chunk-wsj"


def test_changes_are_checked_again(root: Path, relock: Callable[[Path], None]) -> None:
    """Damaged after start: left out on the next read; restored and recorded in the lock: served again."""
    catalog = Catalog(root, check_every_s=0)
    assert catalog.snapshot().omitted == []
    f = root / "results/neurons/minilm/hedge-seed43/pos-wsj.json"
    good = f.read_bytes()
    f.write_bytes(good.replace(b'"schema_version"', b'"schema_versio"', 1))
    snap = catalog.snapshot()
    assert [(n.kind, n.unit) for n in snap.omitted] == [("neurons", "minilm/hedge-seed43/pos-wsj")]
    assert ("minilm", "hedge-seed43", "pos-wsj") not in snap.results.neurons
    assert "integrity check" in (snap.unusable("minilm", "hedge-seed43", "pos-wsj") or "")
    f.write_bytes(good)
    relock(root)
    snap = catalog.snapshot()
    assert snap.omitted == [] and ("minilm", "hedge-seed43", "pos-wsj") in snap.results.neurons


# ---------------------------------------------------------------------------- one bad probe


@pytest.mark.parametrize("name", ["probe.json", "probe.safetensors"])
def test_truncated_probe_serves_the_other_variants(root: Path, name: str) -> None:
    truncate(root / "results/probes/minilm/hedge-seed42" / "pos-wsj" / name)
    c = client(root)
    body = c.get("/readyz").get_json()
    assert body["status"] == "degraded"
    assert any(d.startswith(f"probe of minilm/hedge-seed42/pos-wsj left out: {name}") for d in body["degraded"])

    r = c.post("/v1/probe", json={**OK, "variants": ["base", "hedge-seed42"]})
    out = r.get_json()
    assert r.status_code == 200 and [v["variant"] for v in out["variants"]] == ["base"]
    (missing,) = out["missing"]
    assert missing["variant"] == "hedge-seed42" and "fails its integrity check" in missing["problem"]

    default = c.post("/v1/probe", json=OK).get_json()  # base and each variant's first seed: hedge-seed42 among them
    assert [v["variant"] for v in default["variants"]] == ["base", "sentiment-seed42"]
    assert [m["variant"] for m in default["missing"]] == ["hedge-seed42"]

    alone = c.post("/v1/probe", json={**OK, "variants": ["hedge-seed42"]})
    assert alone.status_code == 503 and alone.content_type == "application/problem+json"
    assert "minilm/hedge-seed42/pos-wsj" in alone.get_json()["detail"]
    for resp in (r, alone):
        no_server_path(root, resp.get_data(as_text=True))


def test_probe_that_differs_from_the_lock_is_not_loaded(root: Path) -> None:
    meta = root / "results/probes/minilm/sentiment-seed43/pos-wsj/probe.json"
    data = json.loads(meta.read_text())
    data["label_names"] = list(reversed(data["label_names"]))  # a valid probe that would answer wrong tags
    meta.write_text(json.dumps(data))
    r = client(root).post("/v1/probe", json={**OK, "variants": ["sentiment-seed43"]})
    assert r.status_code == 503 and "md5 differs from the one dvc.lock records" in r.get_json()["detail"]


# ---------------------------------------------------------------------------- no server path, anywhere


def test_no_server_path_in_any_body(root: Path) -> None:
    truncate(root / "results/layers/minilm/hedge-seed43/pos-wsj.json")
    neurons = root / "results/neurons/minilm/base/chunk-wsj.json"
    neurons.write_text(json.dumps({**json.loads(neurons.read_text()), "k": "many"}))  # JSON, but not a result
    truncate(root / "results/finetune/minilm-hedge-seed43.json")
    truncate(root / "results/claims.json")
    truncate(root / "results/probes/minilm/base/pos-wsj/probe.safetensors")
    c = client(root)
    ready = c.get("/readyz").get_json()
    assert ready["status"] == "degraded" and ready["results"]["finetune"] == len(
        list(root.glob("results/finetune/*.json"))) - 1
    for unit in ("layers of minilm/hedge-seed43/pos-wsj", "neurons of minilm/base/chunk-wsj",
                 "finetune of minilm/hedge-seed43", "claims left out", "probe of minilm/base/pos-wsj"):
        assert any(d.startswith(unit) for d in ready["degraded"]), unit
    bodies = [c.get(url) for url in GETS]
    bodies += [c.post("/v1/probe", json={**OK, "variants": v}) for v in (["base"], ["base", "hedge-seed44"])]
    assert [b.status_code for b in bodies] == [200, 200, 200, 200, 200, 503, 200, 503, 200]
    for b in bodies:
        no_server_path(root, b.get_data(as_text=True))


# ---------------------------------------------------------------------------- loading


def test_transient_load_failure_is_a_short_retry(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import models

    real, calls = models.load, []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ImportError("cannot import name 'AutoConfig' from 'transformers'")
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load", flaky)
    c = client(root)
    r = c.post("/v1/probe", json={**OK, "variants": ["base"]})
    assert r.status_code == 503 and 1 <= int(r.headers["Retry-After"]) <= 10
    assert "could not be loaded just now (ImportError)" in r.get_json()["detail"]
    assert c.post("/v1/probe", json={**OK, "variants": ["base"]}).status_code == 200  # nothing cached


def test_missing_weights_stay_a_clear_503(root: Path) -> None:
    (root / "models/minilm/hedge-seed44").unlink()
    r = client(root).post("/v1/probe", json={**OK, "variants": ["hedge-seed44"]})
    assert r.status_code == 503 and "minilm/hedge-seed44 is not materialised" in r.get_json()["detail"]


RACE = """
import json, sys, threading
from pathlib import Path
from app import create_app
from app.settings import Settings

c = create_app(Settings(root=Path(sys.argv[1]), max_concurrent_probes=4)).test_client()
variants = sys.argv[2:]
start, statuses = threading.Barrier(len(variants)), {}

def probe(v):
    start.wait()
    r = c.post("/v1/probe", json={"words": ["The", "cat", "sat"], "model": "minilm", "task": "pos-wsj",
                                  "variants": [v], "top_k": 1})
    statuses[v] = [r.status_code, r.get_json().get("detail")]

threads = [threading.Thread(target=probe, args=(v,)) for v in variants]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(statuses))
"""


def test_concurrent_first_load_of_several_variants(root: Path) -> None:
    """A fresh worker (a new process) probed with three variants at once: every one loads and answers."""
    variants = ["base", "sentiment-seed42", "hedge-seed42"]
    done = subprocess.run([sys.executable, "-c", RACE, str(root), *variants], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    statuses = json.loads(done.stdout.strip().splitlines()[-1])
    assert statuses == {v: [200, None] for v in variants}
