#pragma once
/// cuda kernels of the optimiser ops (backend/op/optim.hpp): Adam and SGD as one element-wise launch
/// over the flat parameter buffer (bodies in backend/cuda/body/optim.hpp, double internally);
/// `sum_squares` as one block per chunk with a fixed-order block reduction, its partials copied to
/// the host; `find_nonfinite` as an atomic minimum over the offending indices (order-independent,
/// so deterministic), copied to the host. Parameter arrays are device memory; `partials` and
/// `first` are host memory (the copies synchronise this thread's stream). Errors: `device_error`.
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "cpc/backend/cuda/body/optim.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/op/optim.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::cuda_detail {

/// One block per chunk: out[c] = sum of squares of chunk c.
template <class T>
__global__ void sum_squares_kernel(ops::sum_squares_args<T> a, double* out, std::size_t chunks) {
  __shared__ double shared[block_threads / 32 + 1];
  for (std::size_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    const double s = block_sum(cuda_body::sum_squares_lane(a, c, threadIdx.x, blockDim.x), shared);
    if (threadIdx.x == 0) out[c] = s;
  }
}

/// *first = min(*first, i) for every non-finite x[i].
template <class T>
__global__ void find_nonfinite_kernel(ops::find_nonfinite_args<T> a, unsigned long long* first) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    if (cuda_body::nonfinite_at(a, i)) atomicMin(first, static_cast<unsigned long long>(i));
}

}  // namespace cpc::cuda_detail

namespace cpc::ops {

/// cuda adam_update: one thread per scalar.
template <class T>
void run(cuda, const adam_update_args<T>& a) {
  cuda_detail::launch_elements("adam_update", a, a.n, [&] { return "n=" + std::to_string(a.n); });
}

/// cuda sgd_update: one thread per scalar.
template <class T>
void run(cuda, const sgd_update_args<T>& a) {
  cuda_detail::launch_elements("sgd_update", a, a.n, [&] { return "n=" + std::to_string(a.n); });
}

/// cuda sum_squares: one block per chunk; partials copied to host memory.
template <class T>
void run(cuda, const sum_squares_args<T>& a) {
  if (a.n == 0) return;
  const auto sizes = [&] { return "n=" + std::to_string(a.n) + ", chunk=" + std::to_string(a.chunk); };
  cuda_detail::context& c = cuda_detail::context::get("sum_squares");
  const std::size_t chunks = (a.n + a.chunk - 1) / a.chunk;
  auto* out = static_cast<double*>(c.scratch(chunks * sizeof(double), "sum_squares"));
  const unsigned grid = static_cast<unsigned>(chunks < 65535 ? chunks : 65535);
  cuda_detail::sum_squares_kernel<<<grid, cuda_detail::block_threads, 0, c.stream()>>>(a, out, chunks);
  cuda_detail::after_op("sum_squares", sizes);
  cuda_detail::check(
      cudaMemcpyAsync(a.partials, out, chunks * sizeof(double), cudaMemcpyDeviceToHost, c.stream()),
      "sum_squares", sizes);
  cuda_detail::check(cudaStreamSynchronize(c.stream()), "sum_squares", sizes);
}

/// cuda find_nonfinite: atomic minimum of the offending indices; result copied to host memory.
template <class T>
void run(cuda, const find_nonfinite_args<T>& a) {
  *a.first = a.n;
  if (a.n == 0) return;
  const auto sizes = [&] { return "n=" + std::to_string(a.n); };
  cuda_detail::context& c = cuda_detail::context::get("find_nonfinite");
  auto* first = static_cast<unsigned long long*>(c.scratch(sizeof(unsigned long long), "find_nonfinite"));
  const unsigned long long none = a.n;
  cuda_detail::check(cudaMemcpyAsync(first, &none, sizeof none, cudaMemcpyHostToDevice, c.stream()),
                     "find_nonfinite", sizes);
  cuda_detail::
      find_nonfinite_kernel<<<cuda_detail::grid_for(a.n), cuda_detail::block_threads, 0, c.stream()>>>(a,
                                                                                                       first);
  cuda_detail::after_op("find_nonfinite", sizes);
  unsigned long long result = none;
  cuda_detail::check(cudaMemcpyAsync(&result, first, sizeof result, cudaMemcpyDeviceToHost, c.stream()),
                     "find_nonfinite", sizes);
  cuda_detail::check(cudaStreamSynchronize(c.stream()), "find_nonfinite", sizes);
  *a.first = static_cast<std::size_t>(result);
}

}  // namespace cpc::ops
