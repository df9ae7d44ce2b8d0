#!/usr/bin/env bash
# What only the test suite needs: Debian's chromium for the dashboard browser test, prometheus
# for the metrics test, and
# bubblewrap for the code sandbox (setup.sh installs it too; here for a suite run without it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "[test-deps] installing chromium (Debian) for the dashboard browser test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "[test-deps] chromium missing and cannot be installed here; the browser test will be skipped"
    fi
fi

# Debian's prometheus for the metrics test (tests/test_telemetry.py scrapes a tiny run with it).
if ! command -v prometheus >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "[test-deps] installing prometheus (Debian) for the metrics test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "[test-deps] prometheus missing and cannot be installed here; the Prometheus test will be skipped"
    fi
fi

# The code sandbox (env=code) runs model-written code only inside bubblewrap.
bash scripts/bubblewrap.sh "[test-deps]" .venv/bin/python
