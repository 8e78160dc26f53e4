#pragma once
/// The CUDA backend: include this from a `.cu` file compiled by nvcc (CUDA 12 or newer, C++20; link
/// the `cpc::cuda` CMake target) to make `cpc::cuda` available. It brings the op layer, the device
/// memory (`buffer_for<T, cuda>` = `device_buffer<T>`), the device parameter store and a kernel for
/// every op of the seam (backend/ops.hpp) - the audio and image models, InfoNCE, the optimisers:
///   blas        gemm (cuBLAS), add_row_vector, sum_rows, axpby, fill, copy
///   conv1d      conv1d_forward, conv1d_backward_params, conv1d_backward_input (im2col + cuBLAS)
///   conv2d      conv2d_forward, conv2d_backward (im2col + cuBLAS), zero_kernel_rows
///   patches     extract_patches, patch_mean_pool, patch_mean_pool_backward
///   norm        layer_norm_forward, layer_norm_backward
///   activation  relu_forward, relu_backward, add_where_positive
///   recurrent   rnn_cell_forward, rnn_cell_backward, recurrent_forward, recurrent_backward
///   info_nce    info_nce_anchor_terms, info_nce_scatter_dz, transpose_grid
///   optim       adam_update, sgd_update, sum_squares, find_nonfinite
/// An op added to the seam later without a CUDA kernel stops compilation on `cpc::cuda` with
/// "cpc: op '<name>' has no kernel on this backend" (backend/dispatch.hpp).
/// Every op runs asynchronously on the calling thread's stream; results that ops return in host
/// memory (loss sums, norms) synchronise it. Errors: `cpc::device_error` (backend/cuda/device_error.hpp).
/// The element-wise and per-row bodies are plain C++ in backend/cuda/body/ (tested on the host).
#if !defined(__CUDACC__)
#error "cpc/backend/cuda.cuh holds CUDA kernels: include it from a .cu file compiled by nvcc (CUDA >= 12)"
#endif
#if defined(__CUDACC_VER_MAJOR__) && __CUDACC_VER_MAJOR__ < 12
#error "cpc's CUDA backend needs CUDA 12 or newer (nvcc with C++20)"
#endif

#include "cpc/backend/cuda/activation.cuh"
#include "cpc/backend/cuda/blas.cuh"
#include "cpc/backend/cuda/conv1d.cuh"
#include "cpc/backend/cuda/conv2d.cuh"
#include "cpc/backend/cuda/device_error.hpp"
#include "cpc/backend/cuda/info_nce.cuh"
#include "cpc/backend/cuda/memory.hpp"
#include "cpc/backend/cuda/norm.cuh"
#include "cpc/backend/cuda/optim.cuh"
#include "cpc/backend/cuda/parameter_store.hpp"
#include "cpc/backend/cuda/patches.cuh"
#include "cpc/backend/cuda/recurrent.cuh"
#include "cpc/backend/cuda/runtime.hpp"
#include "cpc/backend/ops.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc {

/// `cpc::cuda` has kernels in translation units that include this header.
template <>
inline constexpr bool backend_available<cuda> = true;

}  // namespace cpc
