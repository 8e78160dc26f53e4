#pragma once
/// Thread control and the parallel loop every CPU kernel uses.
/// Work is split into fixed-size chunks that do not depend on the thread count, and each output
/// element is computed by exactly one chunk, so results are bit-identical for a given build
/// whatever the number of threads, unless a kernel documents otherwise.
#include <cstddef>
#include <memory>
#include <mutex>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>

#include "cpc/core/error.hpp"

namespace cpc {

namespace detail {
inline std::unique_ptr<tbb::global_control>& thread_limit() {
  static std::unique_ptr<tbb::global_control> limit;
  return limit;
}
}  // namespace detail

/// Limits cpc's parallel loops to `n` threads (n >= 1). Default: all cores.
/// Errors: throws `cpc::config_error` when n == 0. Not thread-safe against concurrent calls.
inline void set_num_threads(std::size_t n) {
  if (n == 0) throw config_error("set_num_threads: expected n >= 1, got 0");
  detail::thread_limit() =
      std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
}

/// The number of threads cpc's parallel loops may use now.
inline std::size_t num_threads() {
  return tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
}

/// Calls `f(i)` for i in [begin, end), in parallel, one index per task (grain 1). Use it for
/// independent work items (batch items, channel blocks) that are each large enough to pay for a
/// task (tens of microseconds or more).
template <class F>
void parallel_for(std::size_t begin, std::size_t end, F&& f) {
  if (end <= begin) return;
  if (end - begin == 1 || num_threads() == 1) {
    for (std::size_t i = begin; i < end; ++i) f(i);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(begin, end, 1),
      [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i != r.end(); ++i) f(i);
      },
      tbb::simple_partitioner{});
}

}  // namespace cpc
