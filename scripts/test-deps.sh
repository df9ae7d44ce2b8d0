#!/usr/bin/env bash
# What only the test suite needs: Debian's chromium for the dashboard browser test, and
# bubblewrap for the code sandbox (setup.sh installs it too; here for a suite run without it).
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

# The code sandbox (env=code) runs model-written code only inside bubblewrap.
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "[test-deps] installing bubblewrap (Debian) for the code sandbox"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
    else
        echo "[test-deps] bubblewrap (bwrap) is missing: env=code refuses to run code until it is installed (sudo apt-get install bubblewrap)"
    fi
fi
