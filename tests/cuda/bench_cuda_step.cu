// Times training steps of the paper's audio CPC model structure (tests/cuda/op_model.hpp: five
// strided convs with channel norm + ReLU, 512 channels, GRU 256, K = 12 heads, N = 128 negatives
// drawn on the host and copied once per step, Adam) on the GPU: seconds per step, audio-seconds per
// second (1.28 s of audio per item) and peak device memory, per batch size.
// Usage: cpc_cuda_bench_step [steps] [batch...]   (default: 10 steps at batch 8, 32, 64)
//        cpc_cuda_bench_step --smoke              (2 steps at batch 2: a model-level smoke test)
// Exits 77 without a GPU. Never run on a GPU so far (written without one).
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cpc/backend/cuda.cuh>

#include "cuda/op_model.hpp"

using namespace cpc;
using namespace cpc::testing;

int main(int argc, char** argv) {
  if (!cuda_device_available()) {
    std::printf("cpc: skipped - no GPU found: %s\n", cuda_device_description().c_str());
    return 77;
  }
  std::printf("device: %s\n", cuda_device_description().c_str());
  const bool smoke = argc > 1 && std::string(argv[1]) == "--smoke";
  std::size_t steps = smoke ? 2 : 10;
  std::vector<std::size_t> batches =
      smoke ? std::vector<std::size_t>{2} : std::vector<std::size_t>{8, 32, 64};
  if (!smoke && argc > 1) {
    steps = static_cast<std::size_t>(std::atoi(argv[1]));
    if (argc > 2) batches.clear();
    for (int i = 2; i < argc; ++i) batches.push_back(static_cast<std::size_t>(std::atoi(argv[i])));
  }
  std::printf("%-6s %-12s %-14s %-16s %-10s\n", "batch", "s/step", "audio-s/s", "peak MiB", "loss");
  for (std::size_t batch : batches) {
    try {
      const op_cpc_options o = op_cpc_options::paper(batch);
      std::size_t free0 = 0, total = 0;
      cudaMemGetInfo(&free0, &total);
      op_cpc<cpc::cuda> model(o);
      rng gen(5);
      std::vector<float> audio(o.batch * o.samples);
      for (auto& v : audio) v = static_cast<float>(gen.uniform(-0.5, 0.5));
      double loss = model.train_step(audio);  // warm-up: workspaces, cuBLAS heuristics
      cuda_synchronize();
      std::size_t free_min = free0;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t s = 0; s < steps; ++s) {
        loss = model.train_step(audio);
        std::size_t f = 0, t = 0;
        cudaMemGetInfo(&f, &t);
        free_min = f < free_min ? f : free_min;
      }
      cuda_synchronize();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                          static_cast<double>(steps);
      const double audio_s = static_cast<double>(batch) * static_cast<double>(o.samples) / 16000.0 / secs;
      std::printf("%-6zu %-12.4f %-14.1f %-16.0f %-10.4f\n", batch, secs, audio_s,
                  static_cast<double>(free0 - free_min) / (1 << 20), loss);
      if (!std::isfinite(loss)) {
        std::printf("cpc: non-finite loss at batch %zu\n", batch);
        return 1;
      }
    } catch (const cpc::error& e) {
      std::printf("batch %zu failed: %s\n", batch, e.what());
      return 1;
    }
  }
  return 0;
}
