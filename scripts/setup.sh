#!/usr/bin/env bash
# Builds the project's virtual environment (.venv) from nothing: torch + torchvision pinned from PyPI,
# mmcv 2.1.0 compiled from source, mmdet / mmsegmentation, then vssm in editable mode with [mm,dev].
# Idempotent: a finished step is skipped, and a finished environment returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VSSM_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
C="-c $ROOT/constraints.txt"
stamp() { echo "$VENV/.stamp-$1"; }
# The editable install depends on setup.py and the constraints: redo it when they change.
HASH=$(cat setup.py constraints.txt | sha256sum | cut -c1-16)

if [ -f "$(stamp "vssm-$HASH")" ]; then exit 0; fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check"

if [ ! -f "$(stamp torch)" ]; then
  echo "[setup] torch + torchvision (pinned, from PyPI)"
  $PIP install -q --upgrade pip
  # The exact pins keep pip off the machine's local torch 2.13.0+cpu file.
  $PIP install -q --no-cache-dir $C torch==2.12.1 torchvision==0.27.1
  touch "$(stamp torch)"
fi

if [ ! -f "$(stamp mmcv)" ]; then
  echo "[setup] building mmcv 2.1.0 from source (about 6 minutes on 2 cores)"
  $PIP install -q --no-cache-dir $C "setuptools>=77.0.3,<82" wheel ninja
  MAX_JOBS=${MAX_JOBS:-2} CFLAGS=-g0 CXXFLAGS=-g0 \
    $PIP install -q --no-cache-dir --no-build-isolation $C mmcv==2.1.0
  touch "$(stamp mmcv)"
fi

echo "[setup] vssm (editable) with the [mm,dev] extras"
$PIP install -q --no-cache-dir $C -e ".[mm,dev]"
"$VENV/bin/python" -c "import torchvision, timm, mmdet.models, mmseg.models, vssm, vssm.scans, vssm.kernels"
rm -f "$VENV"/.stamp-vssm-*
touch "$(stamp "vssm-$HASH")"
echo "[setup] done: $VENV"
