#!/usr/bin/env bash
# Install Label Studio into its own virtualenv (.venv-labelstudio) for the tests that run a real server.
# Idempotent: does nothing when .venv-labelstudio/bin/label-studio already exists. Label Studio gets its
# own venv because it pins dependencies (numpy<2.3, Django, ...) that must not leak into the main .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${LABEL_STUDIO_VERSION:-1.23.2}"
VENV=".venv-labelstudio"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ -x "$VENV/bin/label-studio" ]; then
  exit 0
fi
echo "Installing label-studio==$VERSION into $VENV (about 1 GB, a few minutes)..."
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "label-studio==$VERSION"
test -x "$VENV/bin/label-studio"
