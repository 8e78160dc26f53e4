// InfoNCE at the paper's audio sizes (latent 512, context 256, K = 12, N = 128, T = 128 frames):
// forward + backward, forward only, and negative sampling alone. FLOPs counted: per step the head
// GEMM (2 BT C D) and the gathered candidate dot products (2 terms (N+1) D); backward adds the
// gathered dP, the dz scatter and the dW / dc GEMMs (another 2x GEMM + 2x gather).
#include <benchmark/benchmark.h>

#include <cpc/loss/info_nce.hpp>

namespace {

struct setup {
  cpc::rng gen{1};
  cpc::info_nce<float> loss{{}, gen};
  cpc::tensor3<float> z, c, dz, dc;
  explicit setup(std::size_t batch) {
    z = xt::zeros<float>({batch, std::size_t(128), std::size_t(512)});
    c = xt::zeros<float>({batch, std::size_t(128), std::size_t(256)});
    for (auto& v : z) v = gen.uniform(-1.0f, 1.0f);
    for (auto& v : c) v = gen.uniform(-1.0f, 1.0f);
  }
  double flops(bool backward) const {
    const double bt = double(z.shape()[0] * z.shape()[1]), gemm = 2 * bt * 256 * 512;
    double total = 0;
    for (std::size_t k = 1; k <= 12; ++k) {
      const double gather = 2 * double(z.shape()[0] * (z.shape()[1] - k)) * 129 * 512;
      total += backward ? 3 * (gemm + gather) : gemm + gather;
    }
    return total;
  }
};

// Arguments: batch, threads.
void bm_forward_backward(benchmark::State& state) {
  cpc::set_num_threads(static_cast<std::size_t>(state.range(1)));
  setup s(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto r = s.loss.compute(s.z, s.c, {}, s.gen, &s.dz, &s.dc);
    benchmark::DoNotOptimize(r.loss);
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(s.flops(true) * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}

void bm_forward(benchmark::State& state) {
  cpc::set_num_threads(static_cast<std::size_t>(state.range(1)));
  setup s(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto r = s.loss.compute(s.z, s.c, {}, s.gen, nullptr, nullptr);
    benchmark::DoNotOptimize(r.loss);
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(s.flops(false) * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}

void bm_sample(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  cpc::negative_sampler sampler({});
  cpc::rng gen(3);
  for (auto _ : state) {
    sampler.sample(batch, 128, {}, gen);
    benchmark::DoNotOptimize(sampler.indices().data());
  }
  state.counters["draws/s"] = benchmark::Counter(double(12 * batch * 128 * 128) * double(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(bm_forward_backward)
    ->Args({8, 1})
    ->Args({8, 2})
    ->Args({32, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bm_forward)->Args({8, 1})->Args({8, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_sample)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
