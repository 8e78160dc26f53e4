#!/usr/bin/env bash
# Image CPC (paper section 3.2) on Fashion-MNIST: installs what is missing (Debian's
# dataset-fashion-mnist included), builds cpc-image, trains for 5 minutes, runs the linear probes
# (CPC vs random-init encoder vs raw pixels) and writes the checkpoint, results.md and a
# nearest-neighbour picture to ./runs/image. Extra arguments go to `cpc-image demo`, e.g.
# `bash scripts/image-demo.sh --minutes 15`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build images
cmake --preset demo
cmake --build --preset demo --target cpc-image
exec build/demo/examples/cpc_image/cpc-image demo --out runs/image "$@"
