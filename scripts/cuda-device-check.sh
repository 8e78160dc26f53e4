#!/usr/bin/env bash
# The CUDA backend's check on a machine with an NVIDIA GPU, in one call (about 3-5 minutes on an
# H100): configures with CPC_WITH_CUDA=ON for the GPU it finds (CMAKE_CUDA_ARCHITECTURES=native),
# builds the CUDA tests and the step benchmark, runs every CUDA test (host bodies, runtime, device
# memory, cuda vs cpu for every op, training steps, optimisers; a failure is rerun with
# CPC_CUDA_SYNC=1 so the failing op is named), then times training steps of the paper's audio model
# structure at batch 8, 32 and 64 and, where python3 has PyTorch with CUDA, the same model in
# PyTorch eager (tests/cuda/bench_torch_step.py). Prints each phase's seconds.
#
# On the device machine (no registry there): first, here, `bash scripts/cuda-pack-deps.sh`; then
#   run(command="bash scripts/cuda-device-check.sh", carry=[".deps"], timeout_s=600)
# Without a GPU it still builds and runs what needs none; the device tests report "skipped".
# Usage: bash scripts/cuda-device-check.sh [build-dir]   (default build/cuda-check)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/cuda-check}
t0=$(date +%s)
phase() { echo "== $1 ($(($(date +%s) - t0)) s)"; }
jobs=$(nproc)

phase "machine"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: no GPU listed"
nvcc --version 2>/dev/null | tail -n 2 || echo "nvcc not on PATH"
extra=()
if [ -d .deps/usr ]; then
  extra+=("-DCMAKE_PREFIX_PATH=$PWD/.deps/usr")
  export LD_LIBRARY_PATH="$PWD/.deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
command -v nvcc >/dev/null || [ ! -x /usr/local/cuda/bin/nvcc ] || export PATH="/usr/local/cuda/bin:$PATH"
command -v ninja >/dev/null && extra+=(-G Ninja)
# Machine code for the GPU that is there (faster to build); the project's default list without one.
if nvidia-smi -L 2>/dev/null | grep -q GPU; then extra+=(-DCMAKE_CUDA_ARCHITECTURES=native); fi

phase "configure"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCPC_WITH_CUDA=ON \
  -DCPC_BUILD_EXAMPLES=OFF -DCPC_BUILD_BENCH=OFF -DCPC_WERROR=OFF "${extra[@]}" || exit 1

phase "build"
cmake --build "$build" -j "$jobs" --target test_cuda_bodies test_op_model test_cuda_runtime test_cuda_device_memory \
  test_cuda_ops test_cuda_train cpc_cuda_bench_step || exit 1

phase "tests"
status=0
if ! ctest --test-dir "$build" -R "test_cuda|test_op_model|cuda_bench_step" --output-on-failure -j 4; then
  status=1
  phase "failed tests again, with CPC_CUDA_SYNC=1 (synchronise and check after every op)"
  CPC_CUDA_SYNC=1 ctest --test-dir "$build" --rerun-failed --output-on-failure
fi

phase "benchmark: cpc CUDA, paper audio model structure, seconds per training step"
"$build/tests/cuda/cpc_cuda_bench_step" 10 8 32 64
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 77 ] || status=1

phase "benchmark: PyTorch eager, same model"
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  PYTHONUNBUFFERED=1 python3 tests/cuda/bench_torch_step.py 10 8 32 64 || status=1
else
  echo "skipped: python3 has no PyTorch with CUDA"
fi

phase "done, status $status"
exit $status
