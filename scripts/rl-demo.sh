#!/usr/bin/env bash
# Reinforcement learning with CPC as an auxiliary loss (paper section 3.4): installs what is missing
# (build tools and gnuplot), builds cpc-rl, trains A2C with and without the CPC loss on memory_maze
# and cue_corridor (5 seeds, 1M environment steps per run; about 12 minutes on 2 cores) and writes
# curves.csv, <env>_mean.csv, summary.csv and returns.png to ./runs/rl. Extra arguments go to
# `cpc-rl demo` (a later --out wins), e.g. `bash scripts/rl-demo.sh --envs cue_corridor --seeds 2
# --steps 500000` (about a minute; at 100k steps neither variant has learned yet).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build rl
cmake --preset demo
cmake --build --preset demo --target cpc-rl
exec build/demo/examples/cpc_rl/cpc-rl demo --out runs/rl "$@"
