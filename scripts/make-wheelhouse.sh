#!/usr/bin/env bash
# Build ./wheelhouse: every wheel the image installs (LingShift's own wheel included), so that
# `docker build` needs no package index (the Dockerfile installs with --no-index from it).
#
#   scripts/make-wheelhouse.sh                 # torch as pip resolves it here (the CPU wheel on our machines)
#   PIP_EXTRA_INDEX_URL=<your torch CUDA index> scripts/make-wheelhouse.sh   # a CUDA image for GPU hosts
#
# Runs on the host with Python 3.11 (the image's Python) and whatever package index pip is configured for.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
out="${1:-wheelhouse}"
command -v "$PYTHON" >/dev/null || { echo "make-wheelhouse: $PYTHON not found (the image runs Python 3.11)" >&2; exit 2; }
mkdir -p "$out"
# pip wheel: LingShift's wheel + every dependency as a wheel (sdists are built into wheels here).
# setuptools leaves build/ in the source tree; remove it unless it was there before.
had_build=$([ -e build ] && echo 1 || true)
"$PYTHON" -m pip wheel --quiet --wheel-dir "$out" .
[ -n "$had_build" ] || rm -rf build
n=$(find "$out" -name '*.whl' | wc -l)
size=$(du -sh "$out" | cut -f1)
echo "make-wheelhouse: $n wheels, $size in $out/ ($(find "$out" -name 'torch-*.whl' -printf '%f\n' | head -n1))"
