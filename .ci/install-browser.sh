#!/bin/sh
# Install what the report browser tests need (tests/grader/test_browser.py, test_browser_zh.py):
# Debian's headless-capable Chromium, and Debian's Noto CJK fonts so the zh-CN reports render without
# missing glyphs. Idempotent: installs only what is missing. Needs root (or sudo) and apt.
set -eu
PACKAGES=""
if ! command -v chromium >/dev/null 2>&1; then
    PACKAGES="$PACKAGES chromium"
fi
if ! fc-list :lang=zh-cn family 2>/dev/null | grep -q .; then
    PACKAGES="$PACKAGES fonts-noto-cjk"
fi
if [ -z "$PACKAGES" ]; then
    echo "chromium and a CJK font are already installed: $(command -v chromium)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $PACKAGES
command -v chromium
fc-list :lang=zh-cn family | head -1
