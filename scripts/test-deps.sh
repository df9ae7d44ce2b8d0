#!/usr/bin/env bash
# What only the test suite needs: Debian's chromium for the dashboard browser test.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "[test-deps] installing chromium (Debian) for the dashboard browser test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "[test-deps] chromium missing and cannot be installed here; the browser test will be skipped"
    fi
fi
