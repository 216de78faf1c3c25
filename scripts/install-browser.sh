#!/usr/bin/env bash
# Install the headless browser the page test (tests/test_page_browser.py, marker "browser") drives:
# Debian's chromium and its matching chromedriver. Idempotent: does nothing when both are present.
# Usage: scripts/install-browser.sh   (as root, or with sudo available)
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have chromium && have chromedriver; then
    echo "install-browser: chromium and chromedriver already installed ($(chromium --version 2>/dev/null | head -n1))"
    exit 0
fi

if ! have apt-get; then
    echo "install-browser: apt-get not found; install chromium and chromedriver with your system's package" \
         "manager (Debian/Ubuntu: chromium chromium-driver), then rerun the browser tests" >&2
    exit 2
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if have sudo; then
        SUDO="sudo"
    else
        echo "install-browser: need root (or sudo) to run apt-get" >&2
        exit 2
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver

if ! have chromium || ! have chromedriver; then
    echo "install-browser: apt-get finished but chromium/chromedriver are still not on PATH" >&2
    exit 1
fi
echo "install-browser: installed $(chromium --version 2>/dev/null | head -n1); chromedriver at $(command -v chromedriver)"
