#!/usr/bin/env bash
# Install the edge runtime's minimal environment (.venv-edge) for the test that proves
# `python -m visionloop.edge` runs without PyTorch: ONNX Runtime, numpy, Pillow, pydantic and
# fsspec, plus this checkout installed editable with --no-deps (so it always runs the current code).
# Idempotent: does nothing when .venv-edge is already complete. About 30 s with a warm pip cache.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=".venv-edge"
STAMP="$VENV/.installed"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
echo "Installing the edge runtime's minimal environment into $VENV (no PyTorch)..."
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "onnxruntime>=1.20" "numpy>=1.26" "pillow>=10.3" "pydantic>=2.7" "fsspec>=2024.6"
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "error: torch is importable in $VENV; the edge environment must not have it" >&2
  exit 1
fi
touch "$STAMP"
