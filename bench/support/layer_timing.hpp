#pragma once
// What the layer benchmarks share: timing one layer's forward or backward pass, and the GFLOP/s
// counter (Google Benchmark).
#include <benchmark/benchmark.h>

namespace cpc::bench {

/// Times `layer.forward(x, y)` per iteration or, with `backward`, `layer.backward(x, y, dy, &dx)`
/// with dy = the forward output (the values do not change the work). `Tensor` is the layer's
/// input and output type (tensor3 `[batch, time, channels]`, tensor4 `[batch, H, W, channels]`).
template <class Layer, class Tensor>
void time_pass(benchmark::State& state, Layer& layer, const Tensor& x, bool backward) {
  Tensor y, dx;
  layer.forward(x, y);
  const Tensor dy = y;
  if (backward) layer.backward(x, y, dy, &dx);  // workspaces sized before timing
  for (auto _ : state) {
    if (backward)
      layer.backward(x, y, dy, &dx);
    else
      layer.forward(x, y);
    benchmark::ClobberMemory();
  }
}

/// Sets the "GFLOP/s" counter from the floating-point operations of one iteration.
inline void gflops_counter(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace cpc::bench
