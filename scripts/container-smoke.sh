#!/usr/bin/env bash
# Container smoke test, for a machine with a Docker engine and no registry access:
#   1. build the `repro` and `serve` images from a local base image and ./wheelhouse (no package index);
#   2. run the offline pipeline (`dvc repro`) in the `repro` container, with no network, on a fresh copy of
#      this checkout bind-mounted at /work, as the host user, with the host's resource cache mounted;
#   3. start the `serve` container on that copy, wait for its HEALTHCHECK, query /readyz, /v1/results and
#      POST /v1/probe;
#   4. print the image sizes and remove its containers and the copy.
#
#   scripts/container-smoke.sh [BASE_IMAGE]      # default: lingshift/debian:bookworm (scripts/make-base-image.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
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
[ -d wheelhouse ] || { say "wheelhouse"; scripts/make-wheelhouse.sh; }
[ -d "$cache/downloads" ] || { echo "container-smoke: no resource cache at $cache; run: python -m pipeline resources --fetch" >&2; exit 2; }

work=$(mktemp -d)
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

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
