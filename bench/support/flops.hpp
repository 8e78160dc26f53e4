#pragma once
// GFLOP/s counters of the benchmarks, with the fraction of the machine's measured FMA peak
// (support/peak.hpp) for the thread count the benchmark ran with.
#include <benchmark/benchmark.h>

#include <cstddef>

#include "support/peak.hpp"

namespace cpc::bench {

/// Process CPU seconds (all threads) since construction: start one just before the timed loop.
class cpu_timer {
 public:
  double seconds() const { return peak_detail::process_cpu_seconds() - t0_; }

 private:
  double t0_ = peak_detail::process_cpu_seconds();
};

/// Sets, for `flops` done over all iterations of the timed loop with `threads` threads:
///   GFLOP/s    flops / time (Google Benchmark's time: real time with UseRealTime)
///   peak-frac  GFLOP/s / the FMA peak of `threads` threads measured in this process (the vectors
///              of this binary's build): the target figure on an idle machine
///   GFLOP/cpu-s  flops / process CPU seconds (all threads), when `cpu_seconds` is given
///   cpu-frac   flops / (process CPU seconds x one core's FMA peak), when `cpu_seconds` is given:
///              how well the cores were used while the process held them. On a machine shared
///              with other processes a thread waits for a core part of the wall time, which
///              lowers peak-frac but not cpu-frac; idle or spinning worker threads lower both.
inline void flops_counters(benchmark::State& state, double flops, std::size_t threads,
                           double cpu_seconds = 0) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
  if (cpu_seconds > 0) state.counters["GFLOP/cpu-s"] = flops / cpu_seconds * 1e-9;
  const peak_figures& p = machine_peak();
  if (!p.measured()) return;
  state.counters["peak-frac"] =
      benchmark::Counter(flops / (p.fma(threads) * 1e9), benchmark::Counter::kIsRate);
  if (cpu_seconds > 0) state.counters["cpu-frac"] = flops / (cpu_seconds * p.fma(1) * 1e9);
}

}  // namespace cpc::bench
