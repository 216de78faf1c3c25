#!/usr/bin/env bash
# Build a Debian bookworm base image without any image registry: debootstrap a minimal root file
# system with what the Dockerfile needs (python3.11 + venv, git, CA certificates) and `docker import` it.
# (python3-distutils is listed because debootstrap's resolver misses that python3.11-venv needs it.)
#
#   scripts/make-base-image.sh [TAG]          # default tag: lingshift/debian:bookworm
#   docker build --build-arg BASE_IMAGE=lingshift/debian:bookworm ...
#
# Needs root, debootstrap and docker (Debian: apt-get install debootstrap docker.io). The Debian mirror is
# the one this host's apt uses (read from /etc/apt/sources.list*), or $DEBIAN_MIRROR.
set -euo pipefail
tag="${1:-lingshift/debian:bookworm}"
suite="${SUITE:-bookworm}"
for tool in debootstrap docker; do
    command -v "$tool" >/dev/null || { echo "make-base-image: $tool not found (apt-get install debootstrap docker.io)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "make-base-image: debootstrap needs root" >&2; exit 2; }
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
                 /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $NF}' | grep -v security | head -n1 || true)
    # "deb [opts] URL": the awk above took the last field of "deb [opts]"; fall back to the URIs line
    [ -n "$mirror" ] || { echo "make-base-image: no Debian mirror found; set DEBIAN_MIRROR" >&2; exit 2; }
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "make-base-image: debootstrap $suite from $mirror into $root"
debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-distutils,git,ca-certificates "$suite" "$root" "$mirror"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$tag"
echo "make-base-image: $tag ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
