// The machine's limits as benchmarks of their own (support/peak.hpp measures the same loops once
// per process for every benchmark binary): the FMA peak with 512-bit and 256-bit vectors on 1 and
// all threads, and the triad bandwidth. The figures of the header line (context) are the best of
// several repetitions; these benchmarks show the spread. Where the build and the CPU have them
// (cpc::bf16_matmul_unavailable_reason), also the bf16 peaks: AMX `tdpbf16ps` (what the bf16
// matmul path runs on) and AVX512-BF16 `vdpbf16ps` (which it does not use: on the Xeon this was
// written on it ran at half the fp32 FMA rate); FLOPs count 2 per bf16 multiply-add.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <thread>

#include <cpc/backend/cpu/bf16.hpp>

#include "support/bf16.hpp"
#include "support/peak.hpp"

namespace {

namespace pd = cpc::bench::peak_detail;

// Threads given as a benchmark argument: 0 = every hardware thread.
unsigned threads_of(std::int64_t arg) {
  return arg == 0 ? std::max(1u, std::thread::hardware_concurrency()) : static_cast<unsigned>(arg);
}

// GFLOP/s (wall), GFLOP/cpu-s and threads of a run of `n` threads that each did `flops` per
// iteration; `per_cpu`: the sum over iterations of each iteration's FLOPs per CPU second.
void rate_counters(benchmark::State& state, unsigned n, double flops, double per_cpu) {
  const double it = double(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(it * double(n) * flops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/cpu-s"] = per_cpu / it * 1e-9;
  state.counters["threads"] = n;
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
  rate_counters(state, n, flops, per_cpu);
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

#if CPC_HAVE_AMX_BF16
// Four independent AMX tile products per iteration (C tiles 0-3 += A tiles 4-5 x B tiles 6-7), each
// 16 x 16 x 32 multiply-adds; returns a C value so that the work is kept.
float amx_loop(std::size_t iterations) {
  // bf16 zeros: the rate does not depend on the values.
  alignas(64) static const std::uint16_t zeros[16 * 32] = {};
  alignas(64) float c[16 * 16];
  const cpc::cpu_kernels::bf16::tile_scope tiles;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, zeros, 64);
  _tile_loadd(5, zeros, 64);
  _tile_loadd(6, zeros, 64);
  _tile_loadd(7, zeros, 64);
  for (std::size_t i = 0; i < iterations; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  return c[0];
}

// 16 independent chains of 512-bit vdpbf16ps (32 bf16 multiply-adds each).
float dpbf16_loop(std::size_t iterations) {
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_ps(float(j) * 1e-3f);
  const auto a = std::bit_cast<__m512bh>(_mm512_set1_epi32(0x3f7f3f7f));
  const auto b = std::bit_cast<__m512bh>(_mm512_set1_epi32(0x38d138d1));
  for (std::size_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
  }
  __m512 s = acc[0];
  for (int j = 1; j < 16; ++j) s = _mm512_add_ps(s, acc[j]);
  return _mm512_reduce_add_ps(s);
}
#endif

// Amx: AMX tdpbf16ps, else AVX512-BF16 vdpbf16ps; range(0): threads (0 = all).
template <bool Amx>
void bm_bf16(benchmark::State& state) {
  if (cpc::bench::skip_without_bf16(state)) return;
#if CPC_HAVE_AMX_BF16
  constexpr bool amx = Amx;
  const unsigned n = threads_of(state.range(0));
  const std::size_t iterations = amx ? std::size_t(1) << 16 : std::size_t(1) << 20;
  const double flops = double(iterations) * (amx ? 4.0 * 16 * 16 * 32 * 2 : 16.0 * 32 * 2);  // per thread
  double per_cpu = 0;
  for (auto _ : state) {
    const pd::thread_times t = pd::run_threads(
        n, [&](unsigned) { pd::sink.store(amx ? amx_loop(iterations) : dpbf16_loop(iterations)); });
    state.SetIterationTime(t.max_wall());
    per_cpu += pd::rate_per_cpu_second(t, flops);
  }
  rate_counters(state, n, flops, per_cpu);
#endif
}

}  // namespace

BENCHMARK(bm_bf16<true>)
    ->Name("bm_bf16_amx")
    ->ArgNames({"threads"})
    ->Arg(1)
    ->Arg(0)
    ->UseManualTime()
    ->Repetitions(3);
BENCHMARK(bm_bf16<false>)
    ->Name("bm_bf16_avx512")
    ->ArgNames({"threads"})
    ->Arg(1)
    ->Arg(0)
    ->UseManualTime()
    ->Repetitions(3);
BENCHMARK(bm_fma)
    ->ArgNames({"bits", "threads"})
    ->ArgsProduct({{512, 256}, {1, 0}})
    ->UseManualTime()
    ->Repetitions(5);
BENCHMARK(bm_triad)->ArgNames({"threads"})->Arg(1)->Arg(0)->UseManualTime()->Repetitions(3);
