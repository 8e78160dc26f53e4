#pragma once
/// Backend tags. Every layer, loss and model takes a `Backend` template parameter (default
/// `cpc::cpu`). Kernels have the same signature per backend; data moves between backends only
/// explicitly. `cpc::cuda` is the extension point for GPU kernels (`.cuh` headers compiled by the
/// user's nvcc); it is usable only when the build defines `CPC_WITH_CUDA`.
#include <type_traits>

namespace cpc {

/// CPU backend: Eigen GEMMs over xtensor buffers, xsimd element-wise maths, oneTBB loops.
struct cpu {};
/// CUDA backend tag (extension point). Requires `-DCPC_WITH_CUDA=ON` and nvcc.
struct cuda {};

/// `false` for any type, delayed until instantiation; for `static_assert` in unsupported branches.
template <class...>
inline constexpr bool dependent_false = false;

/// Whether `Backend` has kernels in this build.
template <class Backend>
inline constexpr bool backend_available = std::is_same_v<Backend, cpu>
#ifdef CPC_WITH_CUDA
                                          || std::is_same_v<Backend, cuda>
#endif
    ;

/// Put in every backend-templated class: one readable error when the backend is unavailable.
#define CPC_REQUIRE_BACKEND(Backend)                                                              \
  static_assert(::cpc::backend_available<Backend>,                                                \
                "cpc: this backend is not available in this build - the cpc::cuda backend needs " \
                "CUDA: configure with -DCPC_WITH_CUDA=ON and compile the including file with "    \
                "nvcc, or use cpc::cpu")

}  // namespace cpc
