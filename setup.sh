#!/usr/bin/env bash
# Set up the workbench in ./.venv: torch first (a CPU build unless this machine has an NVIDIA GPU
# or torch is already installed), then the package with its test extras; --test also installs
# Chromium for the report test. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if ! python -c "import torch" 2>/dev/null; then
  if [ -n "${WORKBENCH_TORCH:-}" ]; then
    pip install -q $WORKBENCH_TORCH              # e.g. WORKBENCH_TORCH="torch==2.5.1 --index-url ..."
  elif command -v nvidia-smi >/dev/null 2>&1; then
    pip install -q torch                          # a CUDA build for GPU machines
  else
    pip install -q torch==2.13.0                  # the CPU build this workplace keeps on disk
  fi
fi
pip install -q -e ".[dev]"
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  # the report test renders HTML in headless Chromium (Debian's package)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: install Debian's chromium package for the report test" >&2
  fi
fi
echo "workbench is set up in .venv (activate with: . .venv/bin/activate)"
