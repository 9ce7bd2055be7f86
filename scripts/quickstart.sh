#!/usr/bin/env bash
# The main job: set up, build a shipped spec, print its summary, render its diagram.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
SPEC=${1:-specs/mobilenet_v2.yaml}
NAME=$(basename "$SPEC" .yaml)
mkdir -p out
netspec build "$SPEC"
netspec render "$SPEC" --level block -o "out/$NAME.svg" --force
echo "diagram: out/$NAME.svg"
