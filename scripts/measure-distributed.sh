#!/usr/bin/env bash
# The measurements of docs/distributed.md on this machine (issue 18):
#  1. the gradient allreduce of the paper model (7.4 M parameters) between N ranks, alone
#     (tests/tools/allreduce_time.cpp: cpc's polled allreduce against MPI's blocking one);
#  2. training throughput of `cpc-speech train --model paper` at the same global batch:
#     1 rank x 2 threads x batch 8 against 2 ranks x 1 thread x batch 4 (interleaved, ROUNDS times),
#     with the allreduce time per step that cpc-speech reports.
# Usage: scripts/measure-distributed.sh CPC_SPEECH_BINARY CORPUS [STEPS] [ROUNDS]
#   (CORPUS: e.g. one made by scripts/make-corpus.sh DIR --size ci). Prints the load average too.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1 corpus=$2 steps=${3:-15} rounds=${4:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe -np 2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load average $(cut -d' ' -f1-3 /proc/loadavg)"
mpicxx -std=gnu++20 -O3 -DNDEBUG -march=native -DXTENSOR_USE_XSIMD -DCPC_WITH_MPI -DOMPI_SKIP_MPICXX -I include \
  -I/usr/include/eigen3 tests/tools/allreduce_time.cpp -o "$out/allreduce_time" -ltbb
echo "== 1. allreduce of the paper model's gradients, 2 ranks on this machine"
"${mpi[@]}" "$out/allreduce_time" 30
echo "== 2. training, paper model, $steps steps per run, global batch 8 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
# 2 ranks bound to a core each (mpirun's default for 2 ranks) and unbound (--bind-to none: the
# kernel moves them, which helps when other jobs share the cores).
for r in $(seq "$rounds"); do
  "$bin" train --corpus "$corpus" --out "$out/one" --model paper --steps "$steps" --batch 8 --threads 2 \
    > "$out/one.log" 2>&1
  echo "round $r, 1 rank x 2 threads x batch 8:             $(grep -o 'trained .* s/step)' "$out/one.log")  load $(cut -d' ' -f1 /proc/loadavg)"
  for bind in core none; do
    "${mpi[@]}" --bind-to $bind "$bin" train --corpus "$corpus" --out "$out/two" --model paper --steps "$steps" \
      --batch 4 --threads 1 > "$out/two.log" 2>&1
    echo "round $r, 2 ranks x 1 thread x batch 4, bind $bind: $(grep -o 'trained .* s/step)' "$out/two.log"); $(grep -o 'allreduce over 2 ranks: .*' "$out/two.log")  load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
