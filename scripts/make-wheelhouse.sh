#!/usr/bin/env bash
# Build a wheelhouse: every wheel the image installs (LingShift's own wheel included), so that
# `docker build` needs no package index (the Dockerfile installs with --no-index from it).
#
#   scripts/make-wheelhouse.sh [OUT]           # wheelhouse/: torch as pip resolves it here (the CPU wheel on
#                                              # our machines), LingShift without extras
#   scripts/make-wheelhouse.sh --cuda [OUT]    # wheelhouse-cuda/: torch's CUDA build + its CUDA runtime wheels
#                                              # (nvidia-*), LingShift with the paper and ray extras
#
# The CUDA mode takes torch from the package index pip is configured for: there the Linux wheel of torch
# 2.13.0 is the CUDA build, which depends on the nvidia-* runtime wheels. It asks for `torch===2.13.0`
# (PEP 440 arbitrary equality: exactly "2.13.0", so a local build such as 2.13.0+cpu in pip's find-links does
# not qualify) and stops unless the wheel it got depends on nvidia-* packages. A Ray cluster's nodes run the
# image built from it (README "Docker"), hence the ray extra; the paper profile's GLUE loader, hence paper.
#
# Runs on the host with Python 3.11 (the image's Python) and whatever package index pip is configured for.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
TORCH_VERSION=2.13.0  # = pyproject.toml's torch pin (tests/test_dockerfile.py checks)
# The image's Python: Debian bookworm's python3.11 (the debootstrap base, or apt-get in the Dockerfile)
IMAGE_PYTHON="${IMAGE_PYTHON:-3.11.2}"
flavour=default
if [ "${1:-}" = "--cuda" ]; then flavour=cuda; shift; fi
case "${1:-}" in -*) echo "make-wheelhouse: unknown option $1 (usage: $0 [--cuda] [OUT])" >&2; exit 2;; esac
if [ "$flavour" = cuda ]; then out="${1:-wheelhouse-cuda}"; spec=".[paper,ray]"; else out="${1:-wheelhouse}"; spec="."; fi
command -v "$PYTHON" >/dev/null || { echo "make-wheelhouse: $PYTHON not found (the image runs Python 3.11)" >&2; exit 2; }
mkdir -p "$out"
constraints=()
if [ "$flavour" = cuda ]; then
    # torch's CUDA build and what it depends on (the nvidia-* runtime wheels, triton), wheels only
    "$PYTHON" -m pip download --quiet --only-binary :all: --dest "$out" "torch===$TORCH_VERSION"
    "$PYTHON" - "$out" "$TORCH_VERSION" <<'EOF'
import pathlib, sys, zipfile
out, version = pathlib.Path(sys.argv[1]), sys.argv[2]
wheels = sorted(out.glob(f"torch-{version}-*.whl"))
if not wheels:
    sys.exit(f"make-wheelhouse: no torch-{version} wheel in {out}/")
meta = zipfile.ZipFile(wheels[0]).read(f"torch-{version}.dist-info/METADATA").decode()
nvidia = [x.split(":", 1)[1].split(";")[0].strip() for x in meta.splitlines()
          if x.startswith("Requires-Dist:") and "nvidia-" in x]
if not nvidia:
    sys.exit(f"make-wheelhouse: {wheels[0].name} is not a CUDA build (it requires no nvidia-* wheels); point pip "
             "at an index whose Linux torch wheel is the CUDA build (PIP_INDEX_URL=...)")
print(f"make-wheelhouse: {wheels[0].name} is a CUDA build: {', '.join(nvidia)}")
EOF
    # pip wheel below must take that wheel, not a local build (2.13.0+cpu sorts higher) from pip's find-links
    cfile=$(mktemp)
    trap 'rm -f "$cfile"' EXIT
    echo "torch===$TORCH_VERSION" > "$cfile"
    constraints=(--find-links "$out" --constraint "$cfile")
fi
# pip wheel: LingShift's wheel + every dependency as a wheel (sdists are built into wheels here).
# setuptools leaves build/ in the source tree; remove it unless it was there before.
had_build=$([ -e build ] && echo 1 || true)
"$PYTHON" -m pip wheel --quiet --wheel-dir "$out" "${constraints[@]}" "$spec"
[ -n "$had_build" ] || rm -rf build
# pip evaluates dependency markers for the Python it runs on, not the image's: add what the image's Python
# needs on top (e.g. redis's `async-timeout; python_full_version < "3.11.3"` for Debian bookworm's 3.11.2).
mapfile -t extra < <("$PYTHON" - "$out" "$IMAGE_PYTHON" <<'EOF'
import email.parser, pathlib, sys, zipfile
from packaging.requirements import Requirement
out, full = pathlib.Path(sys.argv[1]), sys.argv[2]
image = {"python_full_version": full, "python_version": ".".join(full.split(".")[:2])}
missing = set()
for wheel in sorted(out.glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        meta = email.parser.Parser().parsestr(z.read(name).decode())
    extras = [""] + (meta.get_all("Provides-Extra") or [])
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None:
            continue
        for e in extras:
            if req.marker.evaluate({**image, "extra": e}) and not req.marker.evaluate({"extra": e}):
                req.marker = None
                missing.add(str(req))
                break
if missing:
    print("\n".join(sorted(missing)))
EOF
)
if [ "${#extra[@]}" -gt 0 ]; then
    echo "make-wheelhouse: for the image's Python $IMAGE_PYTHON also: ${extra[*]}"
    "$PYTHON" -m pip wheel --quiet --wheel-dir "$out" "${constraints[@]}" "${extra[@]}"
fi
n=$(find "$out" -name '*.whl' | wc -l)
size=$(du -sh "$out" | cut -f1)
echo "make-wheelhouse: $n wheels, $size in $out/ ($(find "$out" -name 'torch-*.whl' -printf '%f\n' | head -n1))"
