// The audio encoder at the paper's shapes: batch 8 windows of 20480 samples, 512 channels.
// Each of the five convolutions forward and backward (d weight, d bias and, except for the first
// layer on raw audio, d input), then the whole encoder. Second argument: threads.
// GFLOP/s counts 2 * multiply-adds of the convolutions only (norm and ReLU are not counted);
// audio-s/s is seconds of 16 kHz audio processed per second.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <thread>

#include <cpc/encoder/strided_conv_encoder.hpp>
#include <cpc/layers/conv1d.hpp>

namespace {

constexpr std::size_t batch = 8, samples = 20480, channels = 512;
constexpr double sample_rate = 16000.0;
constexpr std::array<std::size_t, 5> kernels{10, 8, 4, 4, 4}, strides{5, 4, 2, 2, 2}, paddings{3, 2, 1, 1, 1};

struct layer_shape {
  std::size_t t_in, t_out, c_in;
};

layer_shape shape_of(std::size_t layer) {
  std::size_t t = samples;
  for (std::size_t i = 0; i < layer; ++i)
    t = cpc::conv1d<float>::output_length(t, kernels[i], strides[i], paddings[i]);
  return {t, cpc::conv1d<float>::output_length(t, kernels[layer], strides[layer], paddings[layer]),
          layer == 0 ? 1 : channels};
}

// Multiply-adds of one forward pass of `layer` at batch 8.
double macs(std::size_t layer) {
  const auto s = shape_of(layer);
  return double(batch) * double(s.t_out) * double(channels) * double(s.c_in) * double(kernels[layer]);
}

void set_counters(benchmark::State& state, double flops_per_iteration) {
  const double it = static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] =
      benchmark::Counter(it * flops_per_iteration * 1e-9, benchmark::Counter::kIsRate);
  state.counters["audio-s/s"] =
      benchmark::Counter(it * batch * samples / sample_rate, benchmark::Counter::kIsRate);
}

cpc::conv1d<float> make_conv(std::size_t layer, cpc::rng& gen) {
  return cpc::conv1d<float>({.in_channels = shape_of(layer).c_in,
                             .out_channels = channels,
                             .kernel = kernels[layer],
                             .stride = strides[layer],
                             .padding = paddings[layer]},
                            gen);
}

cpc::tensor3<float> random_tensor(std::size_t a, std::size_t b, std::size_t c, cpc::rng& gen) {
  cpc::tensor3<float> t = cpc::tensor3<float>::from_shape({a, b, c});
  for (auto& v : t) v = gen.uniform(-1.0f, 1.0f);
  return t;
}

void bm_conv_forward(benchmark::State& state) {
  const auto layer = static_cast<std::size_t>(state.range(0));
  cpc::set_num_threads(static_cast<std::size_t>(state.range(1)));
  cpc::rng gen(1);
  auto conv = make_conv(layer, gen);
  const auto s = shape_of(layer);
  const auto x = random_tensor(batch, s.t_in, s.c_in, gen);
  cpc::tensor3<float> y;
  conv.forward(x, y);
  for (auto _ : state) {
    conv.forward(x, y);
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state, 2 * macs(layer));
}

void bm_conv_backward(benchmark::State& state) {
  const auto layer = static_cast<std::size_t>(state.range(0));
  cpc::set_num_threads(static_cast<std::size_t>(state.range(1)));
  cpc::rng gen(2);
  auto conv = make_conv(layer, gen);
  const auto s = shape_of(layer);
  const auto x = random_tensor(batch, s.t_in, s.c_in, gen);
  const auto dy = random_tensor(batch, s.t_out, channels, gen);
  cpc::tensor3<float> y, dx;
  conv.forward(x, y);
  cpc::tensor3<float>* dx_ptr = layer == 0 ? nullptr : &dx;
  conv.backward(x, y, dy, dx_ptr);
  for (auto _ : state) {
    conv.backward(x, y, dy, dx_ptr);
    benchmark::ClobberMemory();
  }
  set_counters(state, 2 * macs(layer) * (layer == 0 ? 1 : 2));
}

double encoder_macs() {
  double m = 0;
  for (std::size_t i = 0; i < 5; ++i) m += macs(i);
  return m;
}

cpc::tensor2<float> random_audio(cpc::rng& gen) {
  cpc::tensor2<float> a = cpc::tensor2<float>::from_shape({batch, samples});
  for (auto& v : a) v = gen.uniform(-0.5f, 0.5f);
  return a;
}

void bm_encoder_forward(benchmark::State& state) {
  cpc::set_num_threads(static_cast<std::size_t>(state.range(0)));
  cpc::rng gen(3);
  cpc::strided_conv_encoder<float> enc({}, gen);
  const auto audio = random_audio(gen);
  cpc::tensor3<float> z;
  enc.forward(audio, z);
  for (auto _ : state) {
    enc.forward(audio, z);
    benchmark::DoNotOptimize(z.data());
  }
  set_counters(state, 2 * encoder_macs());
}

void bm_encoder_backward(benchmark::State& state) {
  cpc::set_num_threads(static_cast<std::size_t>(state.range(0)));
  cpc::rng gen(4);
  cpc::strided_conv_encoder<float> enc({}, gen);
  const auto audio = random_audio(gen);
  cpc::tensor3<float> z;
  enc.forward(audio, z);
  const auto dz = random_tensor(batch, z.shape()[1], channels, gen);
  enc.backward(dz);
  for (auto _ : state) {
    enc.backward(dz);
    benchmark::ClobberMemory();
  }
  // d weight for every layer, d input for layers 1..4.
  set_counters(state, 2 * (2 * encoder_macs() - macs(0)));
}

void thread_args(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2}) b->Arg(t);
}

void layer_thread_args(benchmark::internal::Benchmark* b) {
  for (int layer = 0; layer < 5; ++layer)
    for (int t : {1, 2}) b->Args({layer, t});
}

}  // namespace

BENCHMARK(bm_conv_forward)
    ->Apply(layer_thread_args)
    ->ArgNames({"layer", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_conv_backward)
    ->Apply(layer_thread_args)
    ->ArgNames({"layer", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_encoder_forward)
    ->Apply(thread_args)
    ->ArgNames({"threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_encoder_backward)
    ->Apply(thread_args)
    ->ArgNames({"threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
