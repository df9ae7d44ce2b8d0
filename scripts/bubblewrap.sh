#!/usr/bin/env bash
# bubblewrap.sh TAG PYTHON: make sure the code sandbox (env=code) can run here. Installs Debian's
# bubblewrap when bwrap is missing (as root, or through passwordless sudo), then starts one real
# sandbox with PYTHON (evoforge's interpreter) and prints its one-line error if it cannot run.
# Never fails the caller: only env=code needs the sandbox.
set -uo pipefail
TAG="$1"
PY="$2"

if ! command -v bwrap >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    fi
    if { [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; } && command -v apt-get >/dev/null 2>&1; then
        echo "$TAG installing bubblewrap (Debian) for the code sandbox"
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
    fi
fi

CHECK='from evoforge.sandbox import run_code
assert run_code("def f(x):\n    return x", "f", [[1]]).matches(["1"]) == [True]'
if ! ERR=$("$PY" -c "$CHECK" 2>&1); then
    echo "$TAG warning: env=code cannot verify answers here: $(printf '%s\n' "$ERR" | tail -n 1)"
fi
