#!/usr/bin/env bash
# The README's test command: installs what is missing, configures, builds and runs the suite
# (the dev preset builds with MPI when found, so the 2-rank tests run under mpirun here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build corpus images mpi text
cmake --preset dev
cmake --build --preset dev
ctest --preset dev
