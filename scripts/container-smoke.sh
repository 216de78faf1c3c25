#!/usr/bin/env bash
# Container smoke test, for a machine with a Docker engine and no registry access.
#
# Default (the CPU image, from ./wheelhouse):
#   1. build the `repro` and `serve` images from a local base image and ./wheelhouse (no package index);
#   2. run the offline pipeline (`dvc repro`) in the `repro` container, with no network, on a fresh copy of
#      this checkout bind-mounted at /work, as the host user, with the host's resource cache mounted;
#   3. start the `serve` container on that copy, wait for its HEALTHCHECK, query /readyz, /v1/results and
#      POST /v1/probe;
#   4. print the image sizes and remove its containers and the copy.
#
# --cuda (the CUDA image a Ray cluster's nodes run, lingshift:cuda, from ./wheelhouse-cuda), all with no network:
#   1. build it (--build-arg TORCH_FLAVOUR=cuda --target repro) and print its size and build time;
#   2. torch.version.cuda is set (torch is the CUDA build) and, on a machine without a GPU, CUDA is unavailable;
#   3. Ray starts: `ray start --head` on 127.0.0.1, `ray status`, a task through ray.init(address="auto");
#   4. the pipeline falls back to the CPU: `python -m pipeline run --executor ray` (an embedded Ray) runs
#      extract@minilm-base-pos-wsj and what it needs on a fresh copy; its log must say 0 GPUs, the extraction's
#      run log device "cpu" (or "cuda" where a GPU is visible), and no traceback anywhere.
#
#   scripts/container-smoke.sh [--cuda] [BASE_IMAGE]   # default: lingshift/debian:bookworm (scripts/make-base-image.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
cuda=
if [ "${1:-}" = "--cuda" ]; then cuda=1; shift; fi
base="${1:-lingshift/debian:bookworm}"
cache="${LINGSHIFT_CACHE:-$HOME/.cache/lingshift}"
port="${SMOKE_PORT:-18000}"
name="lingshift-smoke-$$"
start=$SECONDS
say() { echo "== $* ($((SECONDS - start)) s)"; }

command -v docker >/dev/null || { echo "container-smoke: docker not found (Debian: apt-get install docker.io)" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "container-smoke: the Docker engine is not running (start dockerd)" >&2; exit 2; }
docker image inspect "$base" >/dev/null 2>&1 || {
    echo "container-smoke: base image $base not found; build it: scripts/make-base-image.sh $base" >&2; exit 2; }
if [ -n "$cuda" ]; then
    [ -d wheelhouse-cuda ] || { say "wheelhouse-cuda"; scripts/make-wheelhouse.sh --cuda; }
else
    [ -d wheelhouse ] || { say "wheelhouse"; scripts/make-wheelhouse.sh; }
fi
[ -d "$cache/downloads" ] || { echo "container-smoke: no resource cache at $cache; run: python -m pipeline resources --fetch" >&2; exit 2; }

work=$(mktemp -d)
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$cuda" ]; then
    image=lingshift:cuda
    say "build $image from $base and wheelhouse-cuda/"
    t0=$SECONDS
    docker build --quiet --build-arg BASE_IMAGE="$base" --build-arg TORCH_FLAVOUR=cuda --target repro -t "$image" . >/dev/null
    echo "build: $((SECONDS - t0)) s (with whatever layers Docker had cached)"
    docker image inspect --format '{{.Size}}' "$image" | awk -v i="$image" '{printf "size: %s %.2f GB (%.0f bytes)\n", i, $1/1e9, $1}'
    gpus=()
    # on a host with the NVIDIA container toolkit, the same checks with the GPU visible (SMOKE_GPUS=all)
    [ -z "${SMOKE_GPUS:-}" ] || gpus=(--gpus "$SMOKE_GPUS")
    run=(docker run --rm --network none --shm-size 1g "${gpus[@]}")

    say "torch in $image"
    "${run[@]}" "$image" python -c '
import torch
assert torch.version.cuda, f"torch {torch.__version__} is not a CUDA build"
print("torch", torch.__version__, "cuda", torch.version.cuda, "cuda available:", torch.cuda.is_available())'

    say "Ray in $image: ray start --head on 127.0.0.1, ray status, a task"
    "${run[@]}" "$image" sh -euc '
ray start --head --node-ip-address=127.0.0.1 --num-cpus=2 --include-dashboard=false --disable-usage-stats >/tmp/ray-start.log 2>&1 \
    || { cat /tmp/ray-start.log; exit 1; }
ray status | grep -E "Active|node_|CPU|GPU"
python -c "
import ray
ray.init(address=\"auto\", log_to_driver=False)
print(\"ray task:\", ray.get(ray.remote(lambda x: x * 2).remote(21)), \"on\", ray.__version__)"
ray stop >/dev/null'

    say "CPU fallback: python -m pipeline run --executor ray extract@minilm-base-pos-wsj on a fresh copy"
    git clone --quiet . "$work/lingshift"
    log="$work/pipeline-run.log"
    "${run[@]}" --user "$(id -u):$(id -g)" -v "$work/lingshift:/work" -v "$cache:/cache/lingshift" "$image" \
        python -m pipeline run --executor ray -j 2 extract@minilm-base-pos-wsj >"$log" 2>&1 || { cat "$log"; exit 1; }
    grep -E "Ray: |stage|done" "$log" | tail -n 8
    run_log="$work/lingshift/results/runs/extract/minilm-base-pos-wsj.json"
    device=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["facts"]["device"])' "$run_log")
    echo "extraction ran on: $device"
    if [ -n "${SMOKE_GPUS:-}" ]; then want=cuda; else want=cpu; fi
    [ "$device" = "$want" ] || { echo "container-smoke: expected device $want, the run log says $device" >&2; exit 1; }
    if [ -n "${SMOKE_GPUS:-}" ]; then ray_line="Ray: embedded local instance"; else ray_line="Ray: embedded local instance, .* 0 GPUs"; fi
    grep -q "$ray_line" "$log" || { echo "container-smoke: no \"$ray_line\" in the log" >&2; exit 1; }
    if grep -l "Traceback" "$log" "$work"/lingshift/results/runs/logs/*.log 2>/dev/null; then
        echo "container-smoke: a traceback in the logs above" >&2; exit 1
    fi
    say "done"
    exit 0
fi

say "build lingshift:repro and lingshift:serve from $base"
docker build --quiet --build-arg BASE_IMAGE="$base" --target repro -t lingshift:repro . >/dev/null
docker build --quiet --build-arg BASE_IMAGE="$base" --target serve -t lingshift:serve . >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^lingshift:(repro|serve) '

say "offline pipeline in the repro container (network: none) on a fresh copy"
git clone --quiet . "$work/lingshift"
docker run --rm --network none --user "$(id -u):$(id -g)" -v "$work/lingshift:/work" -v "$cache:/cache/lingshift" \
    lingshift:repro sh -c 'dvc repro && python -m pipeline check --only-problems'
# sh -c above only to chain the gate; the image's own CMD is ["dvc", "repro"]

say "serve container on 127.0.0.1:$port"
docker run -d --name "$name" -p "127.0.0.1:$port:8000" -v "$work/lingshift:/work:ro" lingshift:serve >/dev/null
for _ in $(seq 1 60); do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$name")
    [ "$status" = healthy ] && break
    [ "$(docker inspect --format '{{.State.Running}}' "$name")" = true ] || { docker logs "$name"; exit 1; }
    sleep 2
done
echo "health: $status"
[ "$status" = healthy ] || { docker logs "$name"; exit 1; }
curl -fsS "http://127.0.0.1:$port/readyz"; echo
curl -fsS "http://127.0.0.1:$port/v1/results?model=minilm&variant=sentiment&task=pos-wsj&layer=4"; echo
curl -fsS -X POST "http://127.0.0.1:$port/v1/probe" -H 'Content-Type: application/json' \
    -d '{"sentence": "The old man sold his boat .", "model": "minilm", "task": "pos-wsj", "layers": [3], "top_k": 2}' \
    | python3 -c 'import json, sys; r = json.load(sys.stdin); print("probe:", r["words"], {v["variant"]: [t["tag"] for t in v["layers"][0]["tags"]] for v in r["variants"]}, r["elapsed_ms"], "ms")'
say "done"
