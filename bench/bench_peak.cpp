// The machine's limits as benchmarks of their own (support/peak.hpp measures the same loops once
// per process for every benchmark binary): the FMA peak with 512-bit and 256-bit vectors on 1 and
// all threads, and the triad bandwidth. The figures of the header line (context) are the best of
// several repetitions; these benchmarks show the spread.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <thread>

#include "support/peak.hpp"

namespace {

namespace pd = cpc::bench::peak_detail;

// Threads given as a benchmark argument: 0 = every hardware thread.
unsigned threads_of(std::int64_t arg) {
  return arg == 0 ? std::max(1u, std::thread::hardware_concurrency()) : static_cast<unsigned>(arg);
}

// range(0): vector bits (512 or 256); range(1): threads (0 = all).
void bm_fma(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  __builtin_cpu_init();
  if (bits == 512 ? !__builtin_cpu_supports("avx512f") : !__builtin_cpu_supports("fma")) {
    state.SkipWithError("this CPU lacks these FMA instructions");
    return;
  }
  const unsigned n = threads_of(state.range(1));
  const std::size_t iterations = 1u << 20;
  const double flops =
      double(iterations) * (bits == 512 ? pd::chains : pd::chains_256) * (bits / 32) * 2.0;  // per thread
  double per_cpu = 0;
  for (auto _ : state) {
    const pd::thread_times t = pd::run_threads(n, [&](unsigned) {
      pd::sink.store(bits == 512 ? pd::fma_loop_512(iterations) : pd::fma_loop_256(iterations));
    });
    state.SetIterationTime(t.max_wall());
    per_cpu += pd::rate_per_cpu_second(t, flops);
  }
  const double it = double(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(it * double(n) * flops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/cpu-s"] = per_cpu / it * 1e-9;
  state.counters["threads"] = n;
}

// range(0): threads (0 = all).
void bm_triad(benchmark::State& state) {
  const unsigned n = threads_of(state.range(0));
  const std::size_t count = std::size_t(16) << 20;
  pd::huge_array a(count), b(count), c(count);
  for (std::size_t i = 0; i < count; ++i) a.p[i] = 0.0f, b.p[i] = 1.0f, c.p[i] = 2.0f;
  double per_cpu = 0;
  for (auto _ : state) {
    const pd::thread_times t = pd::run_threads(n, [&](unsigned th) {
      const std::size_t i0 = count * th / n, i1 = count * (th + 1) / n;
      float* __restrict x = a.p;
      const float* __restrict y = b.p;
      const float* __restrict z = c.p;
      for (std::size_t i = i0; i < i1; ++i) x[i] = y[i] + 0.5f * z[i];
    });
    state.SetIterationTime(t.max_wall());
    per_cpu += pd::rate_per_cpu_second(t, 12.0 * double(count) / n);
  }
  const double it = double(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(it * 12.0 * double(count) * 1e-9, benchmark::Counter::kIsRate);
  state.counters["GB/cpu-s"] = per_cpu / it * 1e-9;
  state.counters["threads"] = n;
}

}  // namespace

BENCHMARK(bm_fma)
    ->ArgNames({"bits", "threads"})
    ->ArgsProduct({{512, 256}, {1, 0}})
    ->UseManualTime()
    ->Repetitions(5);
BENCHMARK(bm_triad)->ArgNames({"threads"})->Arg(1)->Arg(0)->UseManualTime()->Repetitions(3);
