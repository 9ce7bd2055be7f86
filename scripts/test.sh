#!/usr/bin/env bash
# Set up and run the whole test suite (this is what CI runs, via .ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
# Two workers: CI has two cores (pytest-xdist; each worker uses one torch thread, see conftest).
python -m pytest -n 2 "$@"
