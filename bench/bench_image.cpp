// Image CPC at the cpc-image example's shapes (cpc::presets::image_small): 7x7 grid of 8x8 patches
// per 28x28 image, batch 32 (1568 patches), 64 channels, a stride-2 stem (8x8 -> 4x4 pixels per
// patch, where the residual block runs): conv2d (the stem, and a 64 -> 64 layer at 4x4),
// resnet_block, masked_conv2d (on the 7x7 grid) forward and backward, and the whole training step.
#include <benchmark/benchmark.h>

#include "support/layer_timing.hpp"

#include <cpc/core/allocator.hpp>
#include <cpc/encoder/resnet_block.hpp>
#include <cpc/layers/conv2d.hpp>
#include <cpc/layers/masked_conv2d.hpp>
#include <cpc/model/image_model.hpp>
#include <cpc/optim/adam.hpp>

namespace {

template <class Tensor>
void fill(Tensor& t, cpc::rng& gen) {
  for (auto& v : t) v = static_cast<float>(gen.uniform(-1.0, 1.0));
}

// args: batch of patches, input height = width, input channels, output channels, stride, backward
void BM_conv2d(benchmark::State& state) {
  cpc::configure_allocator();
  const auto n = static_cast<std::size_t>(state.range(0)), hw = static_cast<std::size_t>(state.range(1)),
             c_in = static_cast<std::size_t>(state.range(2)), c = static_cast<std::size_t>(state.range(3)),
             stride = static_cast<std::size_t>(state.range(4));
  const bool backward = state.range(5) != 0;
  cpc::rng gen(1);
  cpc::conv2d<float> layer(
      {.in_channels = c_in, .out_channels = c, .kernel = 3, .stride = stride, .padding = 1}, gen);
  cpc::tensor4<float> x = xt::zeros<float>({n, hw, hw, c_in});
  fill(x, gen);
  cpc::bench::time_pass(state, layer, x, backward);
  cpc::bench::gflops_counter(state, 2 * layer.forward_macs(n, hw, hw) * (backward ? 2 : 1));
}
BENCHMARK(BM_conv2d)
    ->ArgNames({"patches", "hw", "in", "out", "stride", "bwd"})
    ->Args({1568, 8, 1, 64, 2, 0})
    ->Args({1568, 8, 1, 64, 2, 1})
    ->Args({1568, 4, 64, 64, 1, 0})
    ->Args({1568, 4, 64, 64, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_masked_conv2d(benchmark::State& state) {
  cpc::configure_allocator();
  const auto n = static_cast<std::size_t>(state.range(0)), c = static_cast<std::size_t>(state.range(1));
  const bool backward = state.range(2) != 0;
  cpc::rng gen(2);
  cpc::masked_conv2d<float> layer({.in_channels = c, .out_channels = c, .kernel = 3}, gen);
  cpc::tensor4<float> x = xt::zeros<float>(std::array<std::size_t, 4>{n, 7, 7, c});
  fill(x, gen);
  cpc::bench::time_pass(state, layer, x, backward);
  // Useful work: the 6 unmasked taps of 9.
  cpc::bench::gflops_counter(state, 2.0 * n * 49 * c * c * 6 * (backward ? 2 : 1));
}
BENCHMARK(BM_masked_conv2d)
    ->ArgNames({"images", "ch", "bwd"})
    ->Args({32, 64, 0})
    ->Args({32, 64, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_resnet_block(benchmark::State& state) {
  cpc::configure_allocator();
  const auto n = static_cast<std::size_t>(state.range(0)), hw = static_cast<std::size_t>(state.range(1)),
             c = static_cast<std::size_t>(state.range(2));
  cpc::rng gen(3);
  cpc::resnet_block<float> block({.channels = c}, gen);
  cpc::tensor4<float> x = xt::zeros<float>(std::array<std::size_t, 4>{n, hw, hw, c}), y, dx;
  fill(x, gen);
  block.forward(x, y);
  cpc::tensor4<float> dy = y;
  for (auto _ : state) {
    block.forward(x, y);
    block.backward(x, y, dy, &dx);
    benchmark::ClobberMemory();
  }
  const double flops = 3 * 2 * 2.0 * n * hw * hw * c * c * 9;  // two convs, forward + backward (x3)
  cpc::bench::gflops_counter(state, flops);
}
BENCHMARK(BM_resnet_block)
    ->ArgNames({"patches", "hw", "ch"})
    ->Args({1568, 4, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_image_train_step(benchmark::State& state) {
  cpc::configure_allocator();
  using model_t = cpc::cpc_image_model<cpc::presets::image_small>;
  model_t m;  // the preset, as cpc-image trains it
  cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
  cpc::rng gen(4);
  cpc::tensor4<float> images =
      xt::zeros<float>(std::array<std::size_t, 4>{static_cast<std::size_t>(state.range(0)), 28, 28, 1});
  for (auto& v : images) v = static_cast<float>(gen.uniform());
  for (auto _ : state) benchmark::DoNotOptimize(m.train_step(images, opt).loss);
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.range(0)), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_image_train_step)->ArgNames({"batch"})->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
