#!/usr/bin/env bash
# `make repro-full` (README "The offline-full profile"): the offline-full profile (MiniLM + MPNet, pos-wsj,
# chunk-wsj, pos-brown, the paper's fine-tuning recipe, 3 seeds) in a git worktree of this checkout's HEAD under
# .full/ (LINGSHIFT_FULL_DIR), so the quick default's outputs and dvc.lock here are left alone. Resumable: run it
# again after an interruption and DVC re-runs only what is missing or changed (the worktree's dvc.lock is kept
# when the worktree moves to a newer HEAD). Then it copies the committed part back:
#   results/offline-full/{layers,neurons,finetune,train,claims.json,metrics.json,report.md,plots}
#   results/offline-full/lock.yaml   the worktree's dvc.lock (the API checks every served file's md5 against it)
#   results/offline-full/run.json    wall time, stages run, peak disk of the worktree (sampled every 30 s)
# Progress: the runner's log lines ("N of M settled"), also in .full/run.log; per-stage logs in
# .full/results/runs/logs/. JOBS: parallel stages (default: the runner's choice).
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD"
python="${PYTHON:-$src/.venv/bin/python}"
bin="$(dirname "$python")"
dir="${LINGSHIFT_FULL_DIR:-$src/.full}"
head="$(git rev-parse HEAD)"
start=$SECONDS

if [ ! -d "$dir" ]; then
    git worktree prune
    git worktree add --quiet --detach "$dir" "$head"
elif [ "$(git -C "$dir" rev-parse HEAD)" != "$head" ]; then
    keep="$(mktemp)"
    cp "$dir/dvc.lock" "$keep"
    # --force: params.yaml and dvc.lock were rewritten by the run, and results/offline-full/ may be tracked by the
    # newer commit (committed results); the run's own dvc.lock goes back in place right after
    git -C "$dir" checkout --quiet --force --detach "$head"
    cp "$keep" "$dir/dvc.lock"
    rm -f "$keep"
fi
echo "offline-full: worktree $dir at $(git -C "$dir" rev-parse --short HEAD)"

cd "$dir"
export PATH="$bin:$PATH" PYTHONPATH="$dir"
python -m pipeline profile offline-full
results="$(python -c 'from pipeline.config import load_params; print(load_params("params.yaml")[0].paths.results)')"

peak_file="$(mktemp)"
echo 0 > "$peak_file"
( while sleep 30; do
      used=$(du -sb --exclude=.git "$dir" 2>/dev/null | cut -f1)
      [ "${used:-0}" -gt "$(cat "$peak_file")" ] && echo "$used" > "$peak_file"
  done ) &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT

python -m pipeline run ${JOBS:+-j "$JOBS"} 2>&1 | tee -a "$dir/run.log"
python -m pipeline summary || true
used=$(du -sb --exclude=.git "$dir" | cut -f1)
[ "$used" -gt "$(cat "$peak_file")" ] && echo "$used" > "$peak_file"

mkdir -p "$src/$results"
for part in layers neurons finetune train plots; do
    rm -rf "${src:?}/$results/$part"
    [ -e "$results/$part" ] && cp -r "$results/$part" "$src/$results/$part"
done
for f in claims.json metrics.json report.md; do
    [ -e "$results/$f" ] && cp "$results/$f" "$src/$results/$f"
done
cp dvc.lock "$src/$results/lock.yaml"
python - "$src/$results/run.json" "$(cat "$peak_file")" "$((SECONDS - start))" "$head" <<'PY'
import json, sys
from pipeline.provenance import host_facts
out, peak, wall, head = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
json.dump({"commit": head, "wall_seconds_this_invocation": wall, "peak_disk_bytes_worktree": peak,
           "host": host_facts()}, open(out, "w"), indent=2, sort_keys=True)
PY
echo "offline-full: results copied to $results/ (report: $results/report.md) in $((SECONDS - start)) s"
