#!/usr/bin/env bash
# Set up netspec on a fresh machine: Graphviz (for diagrams), a virtual environment in .venv,
# torch 2.13.0 (CPU) first so nothing pulls a CUDA build, then netspec with its test extras
# (torchvision 0.28.0, the release built for torch 2.13.0, comes after torch for the same reason).
# Idempotent: a second run only checks. Source it (`. scripts/setup.sh`) to activate the venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing Graphviz (dot)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq graphviz >/dev/null
fi

# Chromium and its WebDriver: the browser tests of `netspec report` (tests/test_report_browser.py)
# drive this system browser through Selenium; nothing downloads a browser at test time.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "setup: installing chromium and chromium-driver (browser tests)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; } \
    || echo "setup: could not install chromium; the browser tests will be skipped" >&2
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
if ! python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "setup: installing torch 2.13.0 (CPU)" >&2
  python -m pip install -q torch==2.13.0
fi
if ! python -c "import netspec, numpy, pytest, xdist, onnx, onnxruntime, safetensors, jsonschema, sklearn, matplotlib, tqdm, selenium, timm, torchinfo
from netspec._torchvision import import_torchvision; import_torchvision()" 2>/dev/null; then
  echo "setup: installing netspec" >&2
  python -m pip install -q -e '.[test]'
fi
