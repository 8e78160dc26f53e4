// GRU and LSTM forward / backward on the CPC audio autoregressor's shape: 512 -> 256 channels,
// 128 frames, batch 8 and 32, 1 and 2 threads. GFLOP/s counts the GEMM work only:
// forward 2*B*T*G*H*(I + H), backward twice that (dx, dW_ih, dW_hh, dh).
// For context, BM_eigen_gru_step is one plain Eigen recurrent product [B, 256] x [256, 768].
#include <benchmark/benchmark.h>

#include "support/layer_timing.hpp"

#include <cpc/layers/gru.hpp>
#include <cpc/layers/lstm.hpp>

#include <xtensor/xbuilder.hpp>

namespace {

constexpr std::size_t in_size = 512, hidden = 256, frames = 128;

template <class Layer>
void run(benchmark::State& state, std::size_t gates, bool backward) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  cpc::set_num_threads(static_cast<std::size_t>(state.range(1)));
  cpc::rng gen(1);
  Layer layer({.input_size = in_size, .hidden_size = hidden}, gen);
  cpc::tensor3<float> x = xt::zeros<float>({batch, frames, in_size});
  for (auto& v : x) v = gen.uniform(-1.0f, 1.0f);
  cpc::bench::time_pass(state, layer, x, backward);
  cpc::bench::gflops_counter(state,
                             2.0 * static_cast<double>(batch * frames * gates * hidden * (in_size + hidden)) *
                                 (backward ? 2.0 : 1.0));
  state.counters["frames/s"] =
      benchmark::Counter(static_cast<double>(batch * frames), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_gru_forward(benchmark::State& s) {
  run<cpc::gru<float>>(s, 3, false);
}
void BM_gru_backward(benchmark::State& s) {
  run<cpc::gru<float>>(s, 3, true);
}
void BM_lstm_forward(benchmark::State& s) {
  run<cpc::lstm<float>>(s, 4, false);
}
void BM_lstm_backward(benchmark::State& s) {
  run<cpc::lstm<float>>(s, 4, true);
}

void BM_eigen_gru_step(benchmark::State& state) {
  const auto batch = static_cast<std::ptrdiff_t>(state.range(0));
  cpc::set_num_threads(1);
  cpc::cpu_kernels::row_matrix<float> h = cpc::cpu_kernels::row_matrix<float>::Random(batch, hidden);
  cpc::cpu_kernels::row_matrix<float> w = cpc::cpu_kernels::row_matrix<float>::Random(3 * hidden, hidden);
  cpc::cpu_kernels::row_matrix<float> out(batch, 3 * hidden);
  for (auto _ : state) {
    out.noalias() = h * w.transpose();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * static_cast<double>(batch * 3 * hidden * hidden),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "threads"});
  for (long batch : {8, 32})
    for (long threads : {1, 2}) b->Args({batch, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_gru_forward)->Apply(args);
BENCHMARK(BM_gru_backward)->Apply(args);
BENCHMARK(BM_lstm_forward)->Apply(args);
BENCHMARK(BM_lstm_backward)->Apply(args);
BENCHMARK(BM_eigen_gru_step)->ArgName("batch")->Arg(8)->Arg(32)->Unit(benchmark::kMicrosecond);
