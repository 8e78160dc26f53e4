// The element-wise and per-frame layers at the audio encoder's activation shape (batch 8, 1024
// frames after the second convolution, 512 channels) and a prediction head (linear 256 -> 512 over
// 8 x 128 frames): forward and backward. Counters: GB/s of tensor traffic (read x, write y;
// backward also reads dy and writes dx) for the memory-bound layers, GFLOP/s for linear.
#include <benchmark/benchmark.h>

#include "support/layer_timing.hpp"

#include <cstddef>

#include <cpc/layers/channel_norm.hpp>
#include <cpc/layers/layer_norm.hpp>
#include <cpc/layers/linear.hpp>
#include <cpc/layers/relu.hpp>

namespace {

cpc::tensor3<float> random_tensor(std::size_t a, std::size_t b, std::size_t c, cpc::rng& gen) {
  cpc::tensor3<float> t = cpc::tensor3<float>::from_shape({a, b, c});
  for (auto& v : t) v = gen.uniform(-1.0f, 1.0f);
  return t;
}

void bytes_counter(benchmark::State& state, double bytes_per_iteration) {
  state.counters["GB/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * bytes_per_iteration * 1e-9, benchmark::Counter::kIsRate);
}

template <class Layer>
void run(benchmark::State& state, Layer& layer, bool backward, std::size_t b, std::size_t t, std::size_t c) {
  cpc::rng gen(1);
  const auto x = random_tensor(b, t, c, gen);
  cpc::bench::time_pass(state, layer, x, backward);
  bytes_counter(state, (backward ? 4.0 : 2.0) * static_cast<double>(b * t * c) * sizeof(float));
}

constexpr std::size_t B = 8, T = 1024, C = 512;

void bm_relu(benchmark::State& state) {
  cpc::relu<float> layer;
  run(state, layer, state.range(0) == 1, B, T, C);
}

void bm_channel_norm(benchmark::State& state) {
  cpc::channel_norm<float> layer({.channels = C});
  run(state, layer, state.range(0) == 1, B, T, C);
}

void bm_layer_norm(benchmark::State& state) {
  cpc::layer_norm<float> layer({.normalized_shape = C});
  run(state, layer, state.range(0) == 1, B, T, C);
}

void bm_linear_head(benchmark::State& state) {
  cpc::rng gen(2);
  cpc::linear<float> layer({.in_features = 256, .out_features = 512, .bias = false}, gen);
  const bool backward = state.range(0) == 1;
  cpc::bench::time_pass(state, layer, random_tensor(8, 128, 256, gen), backward);
  cpc::bench::gflops_counter(state, 2.0 * 8 * 128 * 256 * 512 * (backward ? 2 : 1));
}

}  // namespace

// Argument: 0 = forward, 1 = backward.
BENCHMARK(bm_relu)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_channel_norm)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_layer_norm)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_linear_head)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
