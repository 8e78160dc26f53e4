#pragma once
/// Launch helpers of the CUDA backend's kernels (nvcc only): the generic element-wise kernel that
/// calls a body `cuda_body::element(args, i)` for every index (grid-stride loop), the fixed-order
/// block reduction that row bodies use as their `reduce`, and grid sizing. Every launch is followed
/// by `cuda_detail::after_op`, which turns a failed launch into a `device_error` naming the op.
/// Source: CUDA C++ Programming Guide (grid-stride loops, warp shuffles).
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "cpc/backend/cuda/body.hpp"
#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/cuda/runtime.hpp"

namespace cpc::cuda_detail {

/// Threads per block of the element-wise and row kernels (a multiple of 32, at most 1024).
inline constexpr unsigned block_threads = 256;

/// Blocks for a grid-stride loop over n indices: enough to fill the device, at most 65535 * 32.
inline unsigned grid_for(std::size_t n) {
  const std::size_t blocks = (n + block_threads - 1) / block_threads;
  const std::size_t cap = std::size_t{65535} * 32;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

/// Calls `cuda_body::element(a, i)` for every i < n (every body is declared above, by body.hpp).
template <class Args>
__global__ void element_kernel(Args a, std::size_t n) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    cuda_body::element(a, i);
}

/// Runs `element_kernel` over n indices on this thread's stream. Errors: `device_error` naming
/// `op` and `sizes()` when there is no device or the launch fails.
template <class Args, class Sizes>
void launch_elements(std::string_view op, const Args& a, std::size_t n, Sizes&& sizes) {
  if (n == 0) return;
  context& c = context::get(op);
  element_kernel<<<grid_for(n), block_threads, 0, c.stream()>>>(a, n);
  after_op(op, sizes);
}

/// Sum of `v` over the calling thread block, the same on every thread; a fixed tree (shuffles
/// within each warp, then the warps' sums in warp order by thread 0), so the result depends only on
/// the values and the block size, never on timing. Every thread of the block must call it.
/// `shared` holds at least blockDim.x / 32 + 1 doubles.
__device__ inline double block_sum(double v, double* shared) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = (blockDim.x + 31) / 32;
  __syncthreads();  // `shared` may still be read by the previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0;
    for (unsigned w = 0; w < warps; ++w) s += shared[w];
    shared[warps] = s;
  }
  __syncthreads();
  return shared[warps];
}

/// Sum of `v` over the calling warp (fixed shuffle tree), valid in lane 0.
__device__ inline double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

/// The `reduce` of the row bodies on the device: `block_sum` over the block that owns the row.
struct block_reducer {
  double* shared;
  CPC_HD double operator()(double v) const {
#if defined(__CUDA_ARCH__)
    return block_sum(v, shared);
#else
    return v;
#endif
  }
};

}  // namespace cpc::cuda_detail
