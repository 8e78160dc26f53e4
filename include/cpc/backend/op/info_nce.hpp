#pragma once
/// InfoNCE ops in the gathered form (van den Oord et al. 2018, section 2, eq. 3-4): per prediction
/// step k, every anchor's prediction p_a is dotted only with its N + 1 candidate latents (the
/// positive and its N negatives) instead of with every frame of the batch, then the softmax
/// cross-entropy over those candidates gives the anchor's loss term and gradient coefficients;
/// the backward pass gathers candidate rows of z into dP and scatters the coefficients times p_a
/// back into dz. Also the grid transpose that `grid_info_nce` uses to read a patch grid as column
/// sequences.
///
/// Frame grid of one step: a = b * time + t indexes anchors and frames alike (`B*T` rows); anchor a
/// *has a term* at step k when t + k < lengths[b]. Every pointer points into memory of the backend
/// (host memory for cpu and reference) unless said otherwise; sizes are the caller's contract (the
/// loss checks shapes, lengths and negative indices before calling).
#include <cstddef>
#include <cstdint>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// The InfoNCE terms of every anchor of one prediction step k (the paper's eq. 4, one candidate
/// set per anchor). Shapes (row-major): lengths `[B]`, p `[B*T, D]` (predictions W_k c), z `[B*T, D]`
/// (latents), negative_index `[B*T, N]` (flat frame indices b' * T + t', each a valid frame),
/// candidates `[B*T, N+1]`, logits `[B*T, N+1]`, anchor_loss `[B*T]`, anchor_hit `[B*T]`, dp
/// `[B*T, D]` (optional). For every anchor a with a term:
///   candidates[a, 0] = a + k (the positive), candidates[a, 1 + n] = negative_index[a, n];
///   logits[a, j] = scale * (p[a, :] . z[candidates[a, j], :]);
///   anchor_loss[a] = log sum_j exp(logits[a, j]) - logits[a, 0]   (maximum subtracted, in double);
///   anchor_hit[a] = 1 if logits[a, 0] > max_{j >= 1} logits[a, j], else 0.
/// With dp non-null (gradient wanted), additionally
///   logits[a, j] is overwritten by g[a, j] = weight * (softmax(logits[a, :])_j - [j == 0]) * scale,
///   the derivative of weight * anchor_loss[a] with respect to p[a, :] . z[candidates[a, j], :];
///   dp[a, :] = sum_j g[a, j] z[candidates[a, j], :]   (dp rows of anchors without a term are set to 0).
/// Finally, in host memory: *loss_sum = sum of anchor_loss[a] over anchors with a term in increasing a
/// (double), *hits = number of those anchors with anchor_hit[a] = 1. Rows of candidates, logits,
/// anchor_loss and anchor_hit of anchors without a term are not written.
/// Source: the cpu kernel is the fused loop of cpc's InfoNCE (O(B T N D) per step instead of a
/// `[B*T, B*T]` score matrix); the log-sum-exp with the maximum subtracted as torch.logsumexp.
template <class T>
struct info_nce_anchor_args {
  std::size_t batch = 0;      ///< B
  std::size_t time = 0;       ///< T (frames per item, padding included)
  std::size_t dim = 0;        ///< D (latent_dim)
  std::size_t negatives = 0;  ///< N (candidates per anchor: N + 1)
  std::size_t step = 0;       ///< k >= 1: the positive of anchor a is frame a + k
  const std::size_t* lengths = nullptr;
  const T* p = nullptr;
  const T* z = nullptr;
  const std::int32_t* negative_index = nullptr;
  T scale = T(1);     ///< s, multiplies every dot product
  double weight = 0;  ///< d loss / d anchor_loss[a] (e.g. 1 / terms); used with dp only
  std::int32_t* candidates = nullptr;
  T* logits = nullptr;
  double* anchor_loss = nullptr;
  unsigned char* anchor_hit = nullptr;
  T* dp = nullptr;              ///< null: forward only (logits keep the logits)
  double* loss_sum = nullptr;   ///< host memory, one value
  std::size_t* hits = nullptr;  ///< host memory, one value
};

/// Computes the candidates, logits, per-anchor losses and hits of one step and, with dp, the
/// softmax gradient coefficients and dP (see `info_nce_anchor_args`). Errors: none.
template <class Backend, class T>
void info_nce_anchor_terms(const info_nce_anchor_args<T>& args) {
  CPC_DISPATCH("info_nce_anchor_terms", Backend, args);
}

/// dz[r, :] += sum over anchors a with a term (in increasing a) and candidates j with
/// candidates[a, j] = r of coeff[a, j] * p[a, :] - the transpose of the dP gather, written as a
/// gather per dz row so that no two tasks write one row and the order of additions is fixed.
/// Shapes: lengths `[B]`, candidates and coeff `[B*T, N+1]` (as `info_nce_anchor_terms` leaves
/// them with dp, coeff = its logits buffer), p `[B*T, D]`, dz `[B*T, D]` (accumulated; rows that
/// are no candidate of any anchor are left as they are). Entries of anchors without a term are
/// ignored. Errors: none.
template <class T>
struct info_nce_scatter_args {
  std::size_t batch = 0, time = 0, dim = 0, negatives = 0;  ///< B, T, D, N
  std::size_t step = 0;                                     ///< k >= 1
  const std::size_t* lengths = nullptr;
  const std::int32_t* candidates = nullptr;
  const T* coeff = nullptr;
  const T* p = nullptr;
  T* dz = nullptr;
};

/// Reusable scratch of `info_nce_scatter_dz` (cpu: the per-row entry lists, CSR). Owned by the
/// caller, so steady-state calls allocate nothing. Empty on backends that need none.
template <class Backend, class T>
struct info_nce_scatter_workspace {};

/// dz += the candidates' share of the InfoNCE gradient (see `info_nce_scatter_args`).
template <class Backend, class T>
void info_nce_scatter_dz(const info_nce_scatter_args<T>& args, info_nce_scatter_workspace<Backend, T>& ws) {
  CPC_DISPATCH("info_nce_scatter_dz", Backend, args, ws);
}

/// y[b, j, i, :] = x[b, i, j, :]: swaps the two middle axes of x `[B, R, C, D]` into y `[B, C, R, D]`
/// (a patch grid as C column sequences of R rows per image, and back with R and C exchanged).
/// x and y do not overlap. Errors: none. Source: `grid_info_nce` (paper section 3.2).
template <class T>
struct transpose_grid_args {
  std::size_t batch = 0, rows = 0, cols = 0, dim = 0;  ///< B, R, C, D of x
  const T* x = nullptr;
  T* y = nullptr;
};

/// Copies x `[B, R, C, D]` to y `[B, C, R, D]` (see `transpose_grid_args`).
template <class Backend, class T>
void transpose_grid(const transpose_grid_args<T>& args) {
  CPC_DISPATCH("transpose_grid", Backend, args);
}

}  // namespace cpc::ops
