#!/usr/bin/env bash
# Trains the paper's audio model and the small image model for a few steps from fixed seeds and
# prints a hash of every parameter (tests/tools/train_hash.cpp). Run it before and after a change
# on the same machine, with the same compiler and flags: equal hashes mean bit-identical training.
# Usage: scripts/train-hash.sh [audio steps] [image steps] [batch]   (flags: CXXFLAGS, default
# the dev preset's "-O3 -DNDEBUG -march=native")
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
${CXX:-g++} -std=gnu++20 ${CXXFLAGS:--O3 -DNDEBUG -march=native} -DXTENSOR_USE_XSIMD -I include -I/usr/include/eigen3 \
  tests/tools/train_hash.cpp -o "$out/train_hash" -ltbb
"$out/train_hash" "$@"
