#pragma once
/// Backend tags. Every layer, loss, optimiser and model takes a `Backend` template parameter
/// (default `cpc::cpu`); the tag alone chooses which kernels run (backend/ops.hpp) and where
/// storage lives (`Backend::memory`, backend/storage.hpp). Data moves between backends only
/// explicitly (`cpc::to<Backend>`).
///
/// A backend is *available* when it has kernels: the host backends always do; `cpc::cuda` becomes
/// available only in a translation unit compiled by nvcc that includes `<cpc/backend/cuda.cuh>`
/// (its kernels), whatever the build options say. Using an unavailable backend stops at
/// `CPC_REQUIRE_BACKEND` with one message; an op without a CUDA kernel stops at `CPC_DISPATCH`. Source:
/// DESIGN.md "Core decisions"; tag dispatch as in CUTLASS / dlib's tt:: layer.
#include <string_view>
#include <type_traits>

#include "cpc/core/memory.hpp"

namespace cpc {

/// CPU backend: register-blocked GEMM (backend/cpu/gemm.hpp), xsimd element-wise maths, oneTBB
/// loops over fixed-size blocks (bit-identical for any thread count). Host memory.
struct cpu {
  using memory = host_memory;
  static constexpr std::string_view name = "cpu";
};

/// Reference backend: plain scalar loops written for clarity, accumulating in double; the test
/// oracle for every other backend (DESIGN.md). Single-threaded and slow by design. Host memory.
struct reference {
  using memory = host_memory;
  static constexpr std::string_view name = "reference";
};

/// Device memory of the CUDA backend (cudaMalloc'd buffers and tensors that CPU code cannot
/// dereference); defined in backend/cuda/memory.hpp, which needs the CUDA runtime headers.
struct cuda_memory;

/// CUDA backend: cuBLAS GEMMs and the kernels of backend/cuda/*.cuh on the current device, one
/// stream per host thread. Device memory (`cuda_memory`). Available only where
/// `<cpc/backend/cuda.cuh>` is included from a `.cu` file compiled by nvcc (CUDA 12 or newer).
struct cuda {
  using memory = cuda_memory;
  static constexpr std::string_view name = "cuda";
};

/// `false` for any type, delayed until instantiation; for `static_assert` in unsupported branches.
template <class...>
inline constexpr bool dependent_false = false;

/// Whether `Backend` has kernels in this build. The host backends are part of the library
/// (their kernels come with backend/ops.hpp, which every layer includes); any other backend is
/// unavailable unless its own kernel headers specialise this to true.
template <class Backend>
inline constexpr bool backend_available = false;
template <>
inline constexpr bool backend_available<cpu> = true;
template <>
inline constexpr bool backend_available<reference> = true;

/// Instantiated once per backend: the one place that reports an unavailable backend (the
/// compiler's note names it: "'cpc::backend_available<cpc::cuda>' evaluates to false"). Every class
/// (`CPC_REQUIRE_BACKEND`) and op (`CPC_DISPATCH`) on that backend refers here, so a whole model
/// reports it once.
template <class Backend>
constexpr bool report_unavailable() {
  static_assert(backend_available<Backend>,
                "cpc: this backend has no kernels in this build (the note names it) - for cpc::cuda include "
                "<cpc/backend/cuda.cuh> in a .cu file compiled by nvcc (link cpc::cuda); otherwise use "
                "cpc::cpu (or cpc::reference, the slow test oracle)");
  return true;
}

/// Put in every backend-templated class: one readable error when the backend is unavailable.
#define CPC_REQUIRE_BACKEND(Backend) static_assert(::cpc::report_unavailable<Backend>())

}  // namespace cpc
