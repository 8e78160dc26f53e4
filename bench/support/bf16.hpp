#pragma once
// The bf16 variants of the benchmarks (cpc::matmul_precision::bf16, Intel AMX): a benchmark run
// with the convolutions' products in bf16, or skipped with the reason where this build, CPU or
// kernel cannot (cpc::bf16_matmul_unavailable_reason).
#include <benchmark/benchmark.h>

#include <string>

#include <cpc/core/precision.hpp>

namespace cpc::bench {

/// Marks `state` skipped, with the reason, when bf16 products are unavailable; true if it did.
inline bool skip_without_bf16(benchmark::State& state) {
  const std::string why = cpc::bf16_matmul_unavailable_reason();
  if (why.empty()) return false;
  state.SkipWithError(("bf16 unavailable: " + why).c_str());
  return true;
}

/// `Bench` with `cpc::matmul_precision::bf16` for its duration (or skipped, see above).
template <void (*Bench)(benchmark::State&)>
void in_bf16(benchmark::State& state) {
  if (skip_without_bf16(state)) return;
  const cpc::matmul_precision_scope bf16(cpc::matmul_precision::bf16);
  Bench(state);
}

}  // namespace cpc::bench
