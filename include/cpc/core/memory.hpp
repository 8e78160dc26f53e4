#pragma once
/// Host memory: the one buffer type of the CPU-side backends (`cpc::cpu`, `cpc::reference`) and of
/// every host workspace, 64-byte aligned so that any row starting at a multiple of 16 floats is
/// aligned for AVX-512 loads. Source: project convention (DESIGN.md, "Core decisions").
#include <cstddef>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>

#include "cpc/core/tensor.hpp"

namespace cpc {

/// Alignment in bytes of every host buffer cpc allocates (one cache line, one AVX-512 register).
inline constexpr std::size_t host_alignment = 64;

/// Growable, contiguous, 64-byte aligned host storage of `T` (a std::vector with an aligned
/// allocator). Used for parameters' flat buffers, optimiser state and kernel workspaces.
template <class T>
using host_buffer = std::vector<T, xsimd::aligned_allocator<T, host_alignment>>;

/// Grows `v` to at least `n` elements; never shrinks, so steady-state calls do not allocate.
template <class V>
void ensure_size(V& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

/// The memory space of the host backends: what a backend tag names as its `memory` (see
/// backend/tags.hpp). `buffer<T>` is flat storage, `tensor<T, N>` a shaped owning tensor; both
/// live in ordinary host memory that any CPU code can read.
struct host_memory {
  template <class T>
  using buffer = host_buffer<T>;
  template <class T, std::size_t N>
  using tensor = cpc::tensor<T, N>;
  /// Whether CPU code may dereference pointers into this memory.
  static constexpr bool host_accessible = true;
};

}  // namespace cpc
