#pragma once
/// Process-wide allocator settings for programs that train or encode with cpc on a CPU.
///
/// Why: Eigen allocates its GEMM packing buffers (up to a few MiB) on every matrix product, and
/// glibc's malloc by default serves blocks above its mmap threshold with a fresh mmap and gives
/// freed memory at the top of the heap back to the system (trim). Each product then touches
/// freshly mapped pages again, at about 12 us per 4 KiB page on the machines measured in
/// docs/performance.md - several times the arithmetic of a small product. Keeping freed memory
/// in the process makes later products reuse warm pages.
///
/// cpc is a header-only library and does not change process-wide state behind a program's back:
/// a program calls `cpc::configure_allocator()` once at start, before its threads allocate
/// (the examples and benchmarks do). With another allocator (jemalloc, tcmalloc: LD_PRELOAD or
/// linked) the call is harmless: mallopt then only sets unused glibc state.
#include <cstddef>

#if defined(__linux__) && __has_include(<malloc.h>)
#include <malloc.h>
#endif

namespace cpc {

/// What `configure_allocator` asks glibc's malloc for.
struct allocator_options {
  /// Blocks at or above this size are mapped with mmap and unmapped on free (glibc's
  /// M_MMAP_THRESHOLD; glibc caps it at 32 MiB on 64-bit systems). Tensors above it are
  /// allocated once and kept; GEMM packing buffers stay below it and are recycled.
  std::size_t mmap_threshold = std::size_t(32) << 20;
  /// Free memory at the top of a heap kept before it is returned to the system (M_TRIM_THRESHOLD).
  std::size_t trim_threshold = std::size_t(1) << 30;
  /// Extra memory requested with each heap growth (M_TOP_PAD), so that a heap grows in few steps.
  std::size_t top_pad = std::size_t(64) << 20;
};

/// Tunes glibc's malloc so that memory freed by one matrix product is reused by the next
/// instead of being returned to the system and faulted in again (see the file comment).
/// Returns true when every setting was accepted; false where mallopt is unavailable (not glibc)
/// or refused a value. Call once at program start; not thread-safe against concurrent calls.
/// Effect measured in docs/performance.md (the training step of the paper's audio model).
/// Source: mallopt(3).
inline bool configure_allocator(const allocator_options& opt = {}) {
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD) && defined(M_TOP_PAD)
  bool ok = mallopt(M_MMAP_THRESHOLD, static_cast<int>(opt.mmap_threshold)) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, static_cast<int>(opt.trim_threshold)) == 1 && ok;
  ok = mallopt(M_TOP_PAD, static_cast<int>(opt.top_pad)) == 1 && ok;
  return ok;
#else
  (void)opt;
  return false;
#endif
}

}  // namespace cpc
