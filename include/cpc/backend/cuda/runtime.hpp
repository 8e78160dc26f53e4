#pragma once
/// The CUDA backend's runtime layer: device detection, the per-thread context (stream, cuBLAS
/// handle, small device scratch) and the checks that turn every failed CUDA runtime or cuBLAS call
/// into a `cpc::device_error` naming the op, its sizes and the CUDA message. Plain C++ on the CUDA
/// runtime and cuBLAS C APIs, so it compiles with any host compiler that sees the toolkit's headers
/// (link CUDA::cudart and CUDA::cublas, as the `cpc::cuda` target does).
///
/// Streams: every op of a host thread runs on `cudaStreamPerThread`, in order; host memory outputs
/// (loss sums, norms) synchronise that stream. Errors of asynchronous kernels surface at the next
/// checked call; with the environment variable CPC_CUDA_SYNC=1 every op synchronises and checks,
/// so the failing op is named. Source: CUDA Runtime API and cuBLAS documentation (CUDA 12/13).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "cpc/backend/cuda/device_error.hpp"

namespace cpc {

namespace cuda_detail {

/// "<name>: <message>" of a CUDA runtime error.
inline std::string cuda_message(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

/// The name of a cuBLAS status (cuBLAS >= 12 has cublasGetStatusName / cublasGetStatusString).
inline std::string cublas_message(cublasStatus_t s) {
  return std::string(cublasGetStatusName(s)) + ": " + cublasGetStatusString(s);
}

/// Throws `device_error` "cpc::cuda <op> (<sizes>): <message>".
[[noreturn]] inline void fail(std::string_view op, const std::string& sizes, const std::string& message) {
  std::string what = "cpc::cuda ";
  what += op;
  if (!sizes.empty()) what += " (" + sizes + ")";
  what += ": " + message;
  throw device_error(what);
}

/// Throws `device_error` unless `e` is cudaSuccess; `sizes()` (a callable returning a string) is
/// evaluated only on failure. Clears the runtime's last error, so a later check starts clean
/// (sticky errors - a faulted kernel - stay and are reported again by every later call).
template <class Sizes>
void check(cudaError_t e, std::string_view op, Sizes&& sizes) {
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();
  fail(op, sizes(), cuda_message(e));
}

/// `check` for a cuBLAS status.
template <class Sizes>
void check(cublasStatus_t s, std::string_view op, Sizes&& sizes) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  fail(op, sizes(), cublas_message(s));
}

/// Sizes callable for calls that have none to name.
inline std::string no_sizes() {
  return {};
}

/// Devices found, and why none when there are none (cudaGetDeviceCount's message: no driver, no
/// GPU, driver older than the runtime). Asked once per process.
struct device_census {
  int count = 0;
  std::string why_none;
};
inline const device_census& census() {
  static const device_census c = [] {
    device_census r;
    const cudaError_t e = cudaGetDeviceCount(&r.count);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      r.count = 0;
      r.why_none = "cudaGetDeviceCount: " + cuda_message(e);
    } else if (r.count == 0) {
      r.why_none = "cudaGetDeviceCount found 0 devices";
    }
    return r;
  }();
  return c;
}

/// Throws `device_error` "cpc::cuda <op>: no usable CUDA device (<why>)" when there is none.
inline void require_device(std::string_view op) {
  const device_census& c = census();
  if (c.count > 0) return;
  fail(op, {}, "no usable CUDA device (" + c.why_none + ")");
}

/// Whether CPC_CUDA_SYNC=1: synchronise and check after every op (read once).
inline bool sync_every_op() {
  static const bool on = [] {
    const char* v = std::getenv("CPC_CUDA_SYNC");
    return v != nullptr && std::string_view(v) == "1";
  }();
  return on;
}

/// The CUDA state of one host thread: its stream (cudaStreamPerThread), its cuBLAS handle bound
/// to that stream, and a growable device scratch for reductions whose results go to the host.
/// Created on first use by `context::get`; released when the thread ends.
class context {
 public:
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  ~context() {
    if (blas_ != nullptr) (void)cublasDestroy(blas_);
    if (scratch_ != nullptr) (void)cudaFree(scratch_);
  }

  /// This thread's context. Errors: `device_error` naming `op` when no device is usable or the
  /// cuBLAS handle cannot be created.
  static context& get(std::string_view op) {
    thread_local context c;
    if (c.blas_ == nullptr) c.init(op);
    return c;
  }

  /// The stream every op of this thread runs on.
  cudaStream_t stream() const { return cudaStreamPerThread; }
  /// The cuBLAS handle (bound to `stream()`, default math: full FP32, no TF32, as PyTorch's default).
  cublasHandle_t blas() const { return blas_; }

  /// At least `bytes` bytes of device scratch (contents undefined), valid until the next call.
  /// Errors: `device_error` naming `op` when cudaMalloc fails.
  void* scratch(std::size_t bytes, std::string_view op) {
    if (bytes > scratch_bytes_) {
      if (scratch_ != nullptr) {
        check(cudaStreamSynchronize(stream()), op, no_sizes);
        (void)cudaFree(scratch_);
        scratch_ = nullptr;
        scratch_bytes_ = 0;
      }
      check(cudaMalloc(&scratch_, bytes), op,
            [&] { return "scratch of " + std::to_string(bytes) + " bytes"; });
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }

 private:
  context() = default;
  void init(std::string_view op) {
    require_device(op);
    check(cublasCreate(&blas_), op, [] { return std::string("cublasCreate"); });
    check(cublasSetStream(blas_, stream()), op, [] { return std::string("cublasSetStream"); });
    check(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), op, [] { return std::string("cublasSetMathMode"); });
  }

  cublasHandle_t blas_ = nullptr;
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
};

/// After an op's launches: checks the launch (cudaGetLastError) and, with CPC_CUDA_SYNC=1, waits
/// for the op and checks its execution. Errors: `device_error` naming `op` and `sizes()`.
template <class Sizes>
void after_op(std::string_view op, Sizes&& sizes) {
  check(cudaGetLastError(), op, sizes);
  if (sync_every_op()) check(cudaStreamSynchronize(cudaStreamPerThread), op, sizes);
}

}  // namespace cuda_detail

/// Whether a usable CUDA device is present (a GPU and a driver new enough for the runtime). Never
/// throws; tests use it to skip.
inline bool cuda_device_available() {
  return cuda_detail::census().count > 0;
}

/// One line about the device: "<name>, compute capability X.Y, N MiB, M SMs" for the current
/// device, or "no usable CUDA device (<why>)". Never throws.
inline std::string cuda_device_description() {
  const auto& c = cuda_detail::census();
  if (c.count == 0) return "no usable CUDA device (" + c.why_none + ")";
  int dev = 0;
  cudaDeviceProp p{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return "CUDA device (properties unavailable)";
  }
  return std::string(p.name) + ", compute capability " + std::to_string(p.major) + "." +
         std::to_string(p.minor) + ", " + std::to_string(p.totalGlobalMem >> 20) + " MiB, " +
         std::to_string(p.multiProcessorCount) + " SMs";
}

/// Waits until every op this thread issued has finished. Errors: `device_error` for a fault of
/// any of them.
inline void cuda_synchronize() {
  cuda_detail::require_device("synchronize");
  cuda_detail::check(cudaStreamSynchronize(cudaStreamPerThread), "synchronize", cuda_detail::no_sizes);
}

}  // namespace cpc
