#!/bin/sh
# Install Debian's headless-capable Chromium for the report browser test (tests/grader/test_browser.py).
# Idempotent: does nothing when chromium is already on PATH. Needs root (or sudo) and apt.
set -eu
if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium
command -v chromium
