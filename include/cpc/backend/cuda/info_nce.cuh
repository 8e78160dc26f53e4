#pragma once
/// cuda kernels of the InfoNCE ops (backend/op/info_nce.hpp), on the bodies of
/// backend/cuda/body/info_nce.hpp:
///   - `info_nce_anchor_terms`: one thread block per anchor - its candidates, its N + 1 logits (one
///     warp per candidate, double dot products summed by a fixed shuffle tree), the softmax
///     cross-entropy by one thread, then dP (one thread per element, candidates in order); then one
///     block sums the anchors' losses and hits (fixed order) and copies the two totals to the host.
///   - `info_nce_scatter_dz`: the (anchor, candidate) entries are sorted by the dz row they add to
///     with CUB's stable radix sort (so each row's entries stay in increasing anchor order), each
///     row finds its entries by binary search, and one thread per dz element gathers them in double:
///     no atomics, the same result on every run.
///   - `transpose_grid`: one thread per element.
/// Pointers are device memory except `loss_sum` and `hits` (host). Errors: `device_error`.
#include <cuda_runtime.h>
#include <cub/device/device_radix_sort.cuh>

#include <cstddef>
#include <cstdint>
#include <string>

#include "cpc/backend/cuda/body/info_nce.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/cuda/memory.hpp"
#include "cpc/backend/op/info_nce.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// Scratch of cuda `info_nce_scatter_dz`: the entries' sort keys and indices before and after the
/// sort `[B*T*(N+1)]`, the row starts `[B*T + 1]` and CUB's temporary storage; device memory.
template <class T>
struct info_nce_scatter_workspace<cuda, T> {
  device_buffer<std::uint32_t> keys, keys_sorted;
  device_buffer<std::int32_t> entries, entries_sorted;
  device_buffer<std::size_t> row_begin;
  device_buffer<unsigned char> sort_temp;
};

}  // namespace cpc::ops

namespace cpc::cuda_detail {

/// Threads per anchor block (4 warps).
inline constexpr unsigned info_nce_threads = 128;
/// Largest N + 1 the anchor kernel takes (its shared memory holds N + 1 doubles and int32s).
inline constexpr std::size_t info_nce_max_candidates = 4096;

/// One block per anchor (grid-stride): candidates, logits, softmax cross-entropy, dP.
template <class T>
__global__ void info_nce_anchor_kernel(ops::info_nce_anchor_args<T> g) {
  extern __shared__ double info_nce_shared[];
  const std::size_t n1 = g.negatives + 1, D = g.dim, BT = g.batch * g.time;
  double* logit = info_nce_shared;                                     // [n1]
  auto* cand = reinterpret_cast<std::int32_t*>(info_nce_shared + n1);  // [n1]
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  const bool grad = g.dp != nullptr;
  for (std::size_t a = blockIdx.x; a < BT; a += gridDim.x) {
    if (!cuda_body::info_nce_has_term(g.time, g.step, g.lengths, a)) {
      if (grad)
        for (std::size_t d = threadIdx.x; d < D; d += blockDim.x) g.dp[a * D + d] = T(0);
      continue;
    }
    for (std::size_t j = threadIdx.x; j < n1; j += blockDim.x) {
      const std::int32_t c = cuda_body::info_nce_candidate(g, a, j);
      cand[j] = c;
      g.candidates[a * n1 + j] = c;
    }
    __syncthreads();
    for (std::size_t j = warp; j < n1; j += warps) {
      const double s = warp_sum(cuda_body::info_nce_dot_lane(
          g.p + a * D, g.z + static_cast<std::size_t>(cand[j]) * D, D, lane, 32));
      if (lane == 0) logit[j] = static_cast<double>(g.scale) * s;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double loss = 0;
      bool hit = false;
      cuda_body::info_nce_softmax_row(logit, n1, static_cast<double>(g.scale), g.weight, grad,
                                      g.logits + a * n1, loss, hit);
      g.anchor_loss[a] = loss;
      g.anchor_hit[a] = hit ? 1 : 0;
    }
    __syncthreads();
    if (grad)
      for (std::size_t d = threadIdx.x; d < D; d += blockDim.x)
        g.dp[a * D + d] = cuda_body::info_nce_dp_element(g, logit, cand, d);
    __syncthreads();  // shared memory is reused by the next anchor
  }
}

/// One block: totals[0] = sum of anchor_loss over anchors with a term, totals[1] = their hits
/// (each thread a contiguous run of anchors in order, then a fixed-order block sum).
template <class T>
__global__ void info_nce_totals_kernel(ops::info_nce_anchor_args<T> g, double* totals) {
  __shared__ double shared[block_threads / 32 + 1];
  const std::size_t BT = g.batch * g.time, per = (BT + blockDim.x - 1) / blockDim.x;
  double loss = 0, hits = 0;
  const std::size_t begin = threadIdx.x * per, end = begin + per < BT ? begin + per : BT;
  for (std::size_t a = begin; a < end; ++a)
    if (cuda_body::info_nce_has_term(g.time, g.step, g.lengths, a)) {
      loss += g.anchor_loss[a];
      hits += g.anchor_hit[a];
    }
  loss = block_sum(loss, shared);
  hits = block_sum(hits, shared);
  if (threadIdx.x == 0) {
    totals[0] = loss;
    totals[1] = hits;
  }
}

/// keys[e] = the dz row entry e adds to (or B*T), entries[e] = e.
template <class T>
__global__ void info_nce_scatter_keys_kernel(ops::info_nce_scatter_args<T> g, std::uint32_t* keys,
                                             std::int32_t* entries, std::size_t total) {
  for (std::size_t e = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<std::size_t>(blockDim.x) * gridDim.x) {
    keys[e] = cuda_body::info_nce_scatter_key(g, e);
    entries[e] = static_cast<std::int32_t>(e);
  }
}

/// row_begin[r] = first sorted entry of row r, r = 0 .. rows. (A template only so that the header
/// defines no non-inline kernel.)
template <class Key = std::uint32_t>
__global__ void info_nce_row_begin_kernel(const Key* keys_sorted, std::size_t total, std::size_t* row_begin,
                                          std::size_t rows) {
  for (std::size_t r = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; r <= rows;
       r += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    row_begin[r] = cuda_body::lower_bound_index(keys_sorted, total, static_cast<Key>(r));
}

/// One thread per dz element: the gather over the row's sorted entries.
template <class T>
__global__ void info_nce_scatter_kernel(ops::info_nce_scatter_args<T> g, const std::int32_t* entries,
                                        const std::size_t* row_begin, std::size_t total) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    cuda_body::info_nce_scatter_element(g, entries, row_begin, i / g.dim, i % g.dim);
}

/// "batch=.., time=.., dim=.., negatives=.., step=.." for error messages.
inline std::string info_nce_sizes(std::size_t batch, std::size_t time, std::size_t dim, std::size_t negatives,
                                  std::size_t step) {
  return "batch=" + std::to_string(batch) + ", time=" + std::to_string(time) +
         ", dim=" + std::to_string(dim) + ", negatives=" + std::to_string(negatives) +
         ", step=" + std::to_string(step);
}

}  // namespace cpc::cuda_detail

namespace cpc::ops {

/// cuda info_nce_anchor_terms: one block per anchor, then the totals (copied to the host).
template <class T>
void run(cuda, const info_nce_anchor_args<T>& g) {
  *g.loss_sum = 0;
  *g.hits = 0;
  const std::size_t BT = g.batch * g.time, n1 = g.negatives + 1;
  if (BT == 0) return;
  const auto sizes = [&] { return cuda_detail::info_nce_sizes(g.batch, g.time, g.dim, g.negatives, g.step); };
  if (n1 > cuda_detail::info_nce_max_candidates)
    cuda_detail::fail(
        "info_nce_anchor_terms", sizes(),
        "at most " + std::to_string(cuda_detail::info_nce_max_candidates - 1) + " negatives per anchor");
  cuda_detail::context& c = cuda_detail::context::get("info_nce_anchor_terms");
  const std::size_t shared = n1 * (sizeof(double) + sizeof(std::int32_t));
  const unsigned grid = static_cast<unsigned>(BT < 65535 * 16 ? BT : 65535 * 16);
  cuda_detail::info_nce_anchor_kernel<<<grid, cuda_detail::info_nce_threads, shared, c.stream()>>>(g);
  cuda_detail::after_op("info_nce_anchor_terms", sizes);
  auto* totals = static_cast<double*>(c.scratch(2 * sizeof(double), "info_nce_anchor_terms"));
  cuda_detail::info_nce_totals_kernel<<<1, cuda_detail::block_threads, 0, c.stream()>>>(g, totals);
  cuda_detail::after_op("info_nce_anchor_terms", sizes);
  double host[2] = {0, 0};
  cuda_detail::check(cudaMemcpyAsync(host, totals, sizeof host, cudaMemcpyDeviceToHost, c.stream()),
                     "info_nce_anchor_terms", sizes);
  cuda_detail::check(cudaStreamSynchronize(c.stream()), "info_nce_anchor_terms", sizes);
  *g.loss_sum = host[0];
  *g.hits = static_cast<std::size_t>(host[1]);
}

/// cuda info_nce_scatter_dz: stable radix sort of the entries by row, then one thread per dz element.
template <class T>
void run(cuda, const info_nce_scatter_args<T>& g, info_nce_scatter_workspace<cuda, T>& ws) {
  const std::size_t BT = g.batch * g.time, n1 = g.negatives + 1, total = BT * n1;
  if (BT == 0 || g.dim == 0) return;
  const auto sizes = [&] { return cuda_detail::info_nce_sizes(g.batch, g.time, g.dim, g.negatives, g.step); };
  if (total > 2147483647u)
    cuda_detail::fail("info_nce_scatter_dz", sizes(), "more than 2^31 - 1 (anchor, candidate) entries");
  cuda_detail::context& c = cuda_detail::context::get("info_nce_scatter_dz");
  ensure_device_size(ws.keys, total, "info_nce_scatter_dz", sizes);
  ensure_device_size(ws.keys_sorted, total, "info_nce_scatter_dz", sizes);
  ensure_device_size(ws.entries, total, "info_nce_scatter_dz", sizes);
  ensure_device_size(ws.entries_sorted, total, "info_nce_scatter_dz", sizes);
  ensure_device_size(ws.row_begin, BT + 1, "info_nce_scatter_dz", sizes);
  cuda_detail::info_nce_scatter_keys_kernel<<<cuda_detail::grid_for(total), cuda_detail::block_threads, 0,
                                              c.stream()>>>(g, ws.keys.data(), ws.entries.data(), total);
  cuda_detail::after_op("info_nce_scatter_dz", sizes);
  int end_bit = 1;  // keys are 0 .. B*T
  while (end_bit < 32 && (std::size_t{1} << end_bit) <= BT) ++end_bit;
  std::size_t temp_bytes = 0;
  cuda_detail::check(cub::DeviceRadixSort::SortPairs(
                         nullptr, temp_bytes, ws.keys.data(), ws.keys_sorted.data(), ws.entries.data(),
                         ws.entries_sorted.data(), static_cast<int>(total), 0, end_bit, c.stream()),
                     "info_nce_scatter_dz", sizes);
  ensure_device_size(ws.sort_temp, temp_bytes, "info_nce_scatter_dz", sizes);
  cuda_detail::check(
      cub::DeviceRadixSort::SortPairs(ws.sort_temp.data(), temp_bytes, ws.keys.data(), ws.keys_sorted.data(),
                                      ws.entries.data(), ws.entries_sorted.data(), static_cast<int>(total), 0,
                                      end_bit, c.stream()),
      "info_nce_scatter_dz", sizes);
  cuda_detail::
      info_nce_row_begin_kernel<<<cuda_detail::grid_for(BT + 1), cuda_detail::block_threads, 0, c.stream()>>>(
          ws.keys_sorted.data(), total, ws.row_begin.data(), BT);
  cuda_detail::info_nce_scatter_kernel<<<cuda_detail::grid_for(BT * g.dim), cuda_detail::block_threads, 0,
                                         c.stream()>>>(g, ws.entries_sorted.data(), ws.row_begin.data(),
                                                       BT * g.dim);
  cuda_detail::after_op("info_nce_scatter_dz", sizes);
}

/// cuda transpose_grid: one thread per element.
template <class T>
void run(cuda, const transpose_grid_args<T>& g) {
  cuda_detail::launch_elements("transpose_grid", g, g.batch * g.rows * g.cols * g.dim, [&] {
    return "batch=" + std::to_string(g.batch) + ", rows=" + std::to_string(g.rows) +
           ", cols=" + std::to_string(g.cols) + ", dim=" + std::to_string(g.dim);
  });
}

}  // namespace cpc::ops
