#!/usr/bin/env bash
# `make rehearse` (README "Rehearsing the paper profile"): the paper profile's whole DAG, offline, on local
# random stand-ins, in a temporary clone of this checkout (its committed HEAD). Its verdicts are not findings.
#   1. scripts/make-paper-mini.py writes the stand-ins (hub cache, datasets cache, corpora) into a temp dir;
#   2. the clone switches to the paper-mini profile and runs `python -m pipeline run -j 2` with the Hugging Face
#      clients pointed at the stand-ins and offline (HF_HOME, HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1), the
#      corpora in its (ignored) corpora/ folder, which paths.corpora names;
#   3. checks: the report is labelled a rehearsal, claims.json evaluates all five claims (none NOT_APPLICABLE),
#      every fine-tuning result's provenance names the pinned GLUE revision,
#      `dvc status` is clean; the Ray executor re-runs a slice of the DAG (forced: a model, a corpus, a fine-tuning,
#      two extractions, their probes and neuron analyses) and dvc.lock, which holds every output's md5, is unchanged;
#      then `python -m pipeline profile offline` puts params.yaml back byte for byte
#      and the run changed nothing outside results/ and dvc.lock (what any profile's run rewrites).
# PYTHON: the interpreter of the project's environment (default: .venv/bin/python); KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD"
python="${PYTHON:-$src/.venv/bin/python}"
bin="$(dirname "$python")"
tmp="$(mktemp -d)"
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
start=$SECONDS
step() { echo; echo "== rehearse: $* ($((SECONDS - start)) s)"; }

step "stand-ins (random tiny models, generated GLUE and corpora) in $tmp/standins"
"$python" scripts/make-paper-mini.py "$tmp/standins"

step "a clone of this checkout in $tmp/copy"
git clone --quiet "$src" "$tmp/copy"
cp -r "$tmp/standins/corpora" "$tmp/copy/corpora"
cd "$tmp/copy"
export PATH="$bin:$PATH" PYTHONPATH="$tmp/copy" HF_HOME="$tmp/standins/hf" HF_HUB_CACHE="$tmp/standins/hf/hub" \
    HF_DATASETS_CACHE="$tmp/standins/hf/datasets" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

step "python -m pipeline profile paper-mini; dvc repro --dry --force"
python -m pipeline profile paper-mini
echo "paper-mini: $(dvc repro --dry --force | grep -c '^Running stage') stages"

step "python -m pipeline run -j 2"
python -m pipeline run -j 2

step "report and claims: a labelled rehearsal, all five claims evaluated"
python - <<'PY'
import json, sys
report = open("results/report.md", encoding="utf-8").read()
claims = json.load(open("results/claims.json", encoding="utf-8"))
problems = []
if "REHEARSAL, NOT A RESULT" not in report.split("## Scope")[0]:
    problems.append("report.md does not say at its top that it is a rehearsal")
if claims["profile"] != "paper-mini" or not str(claims.get("proxy_reason")).startswith("REHEARSAL"):
    problems.append(f"claims.json: profile {claims['profile']!r}, proxy_reason {claims.get('proxy_reason')!r}")
verdicts = {c["id"]: c["verdict"] for c in claims["claims"]}
for cid in ("C1", "C2", "C3", "C4", "C5"):
    print(f"{cid}: {verdicts.get(cid, 'MISSING')} (rehearsal: not a finding)")
    if verdicts.get(cid) in (None, "NOT_APPLICABLE"):
        problems.append(f"{cid} was not evaluated ({verdicts.get(cid, 'missing')})")
from pathlib import Path
from pipeline.config import load_params
from pipeline.data.glue import GLUE_REVISION
models = set(load_params("params.yaml")[0].models)  # the clone also holds the offline profile's committed runs
records = [(p, json.load(open(p, encoding="utf-8"))) for p in sorted(Path("results/finetune").glob("*.json"))]
runs = [(p, r) for p, r in records if r["model"] in models]
for path, record in runs:  # every fine-tuning result of this profile names the GLUE commit it trained on
    source = record["provenance"].get("data_source", {}).get("source", "")
    if f"nyu-mll/glue@{GLUE_REVISION}" not in source:
        problems.append(f"{path}: provenance.data_source.source {source!r} does not name GLUE@{GLUE_REVISION}")
print(f"{len(runs)} fine-tuning results name nyu-mll/glue@{GLUE_REVISION}")
if not runs:
    problems.append("no fine-tuning results in results/finetune")
sys.exit("\n".join(problems) or None)
PY

step "dvc status is clean"
status="$(dvc status)"
echo "$status"
grep -q "Data and pipelines are up to date" <<<"$status"

step "Ray reproduces a slice of the DAG bit for bit (forced: model, corpus, a fine-tuning, two extractions, probes, neurons)"
# dvc.lock holds the md5 of every output (weights, stores, results): the same file means the same bytes.
cp dvc.lock "$tmp/dvc.lock.local"
python -m pipeline run --executor ray -f -j 2 probe@xlnet-base-cased-stsb-seed42-ccg-ccgbank \
    neurons@xlnet-base-cased-stsb-seed42-ccg-ccgbank probe@xlnet-base-cased-base-ccg-ccgbank \
    neurons@xlnet-base-cased-base-ccg-ccgbank
if ! cmp -s dvc.lock "$tmp/dvc.lock.local"; then
  echo "the Ray executor's outputs differ from the local run's (dvc.lock, local run -> Ray run):" >&2
  diff "$tmp/dvc.lock.local" dvc.lock | head -40 >&2
  exit 1
fi
echo "dvc.lock unchanged: the Ray run wrote the same bytes"

step "back to the offline profile: params.yaml as committed, nothing changed outside results/ and dvc.lock"
python -m pipeline profile offline
if ! git diff --exit-code --quiet -- params.yaml; then
  echo "params.yaml after the switch back differs from the committed one:" >&2
  git diff -- params.yaml | head -40 >&2
  exit 1
fi
other="$(git status --porcelain | grep -v -E '^.. (results/|dvc\.lock$)' || true)"
if [ -n "$other" ]; then
  echo "the rehearsal left files outside results/ and dvc.lock:" >&2
  echo "$other" >&2
  exit 1
fi
# -x: DVC wrote a .gitignore next to each new cached out (results/probes/MODEL/VARIANT/.gitignore); without -x
# git clean removes those untracked .gitignore files but keeps the outs they hid, which then show as untracked.
git checkout --quiet -- results dvc.lock && git clean -fdqx results
left="$(git status --porcelain)"
if [ -n "$left" ]; then
  echo "after restoring results/ and dvc.lock, the clone still differs from its HEAD:" >&2
  echo "$left" | head -40 >&2
  exit 1
fi
step "done: the rehearsal ran; its verdicts are not findings"
