#!/usr/bin/env bash
# The README's test command: installs what is missing, configures, builds and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build corpus images
cmake --preset dev
cmake --build --preset dev
ctest --preset dev
