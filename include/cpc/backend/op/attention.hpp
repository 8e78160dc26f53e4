#pragma once
/// Attention ops: the core of causal multi-head scaled dot-product self-attention, with an
/// optional learned relative-position term (the prediction network of facebookresearch/CPC_audio,
/// cpc/transformers.py: a `Krelpos` table shared by the heads). The projections (Wq, Wk, Wv, Wo)
/// are GEMMs outside these ops. Every op takes raw pointers into memory of its backend and is
/// dispatched on the backend tag alone (backend/dispatch.hpp).
/// Source: Vaswani et al. 2017, section 3.2 (scaled dot-product and multi-head attention); the
/// relative term as CPC_audio computes it (its "skew" of Q Krelpos gives column S-1-(i-j)).
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Arguments of `causal_attention_forward`. Shapes: q, k, v and out `[batch, time, heads *
/// head_dim]` (head h owns channels [h * head_dim, (h + 1) * head_dim)); rel `[head_dim, rel_len]`
/// or null; probs `[batch, heads, time, time]`. For every item b, head h and query step i, with
/// q_i, k_j, v_j head h's slices:
///   s_ij = scale * (q_i . k_j + q_i . rel[:, rel_len - 1 - (i - j)])     for j <= i
///   a_ij = exp(s_ij) / sum_{j' <= i} exp(s_ij')   (a_ij = 0 for j > i: the causal mask)
///   out_i = sum_{j <= i} a_ij v_j
/// The relative term is skipped when rel is null; with rel, time <= rel_len (the caller checks).
/// probs and out are overwritten (every element; probs keeps a for backward).
template <class T>
struct causal_attention_forward_args {
  std::size_t batch = 0, time = 0, heads = 0, head_dim = 0;
  std::size_t rel_len = 0;
  double scale = 1.0;
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  const T* rel = nullptr;
  T* probs = nullptr;
  T* out = nullptr;
};

/// Arguments of `causal_attention_backward`: the gradients of `causal_attention_forward` for the
/// output gradient dout `[batch, time, heads * head_dim]`, given the forward's q, k, v, rel and
/// probs. With g_ij = dout_i . v_j and ds_ij = a_ij (g_ij - sum_j' a_ij' g_ij'):
///   dv_j = sum_{i >= j} a_ij dout_i,  dq_i = scale * sum_{j <= i} ds_ij (k_j + rel[:, c_ij]),
///   dk_j = scale * sum_{i >= j} ds_ij q_i,  d_rel[:, c] += scale * sum_{c_ij = c} ds_ij q_i
/// with c_ij = rel_len - 1 - (i - j). dq, dk, dv are overwritten (same shapes as q); d_rel
/// `[head_dim, rel_len]` is accumulated (null: not computed; must be null when rel is null).
/// Deterministic: sums run in an order fixed by the sizes alone, whatever the thread count.
template <class T>
struct causal_attention_backward_args {
  std::size_t batch = 0, time = 0, heads = 0, head_dim = 0;
  std::size_t rel_len = 0;
  double scale = 1.0;
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  const T* rel = nullptr;
  const T* probs = nullptr;
  const T* dout = nullptr;
  T* dq = nullptr;
  T* dk = nullptr;
  T* dv = nullptr;
  T* d_rel = nullptr;
};

/// Reusable scratch of `causal_attention_backward` (cpu: per-(item, head) partial relative-term
/// gradients, summed in a fixed order). Owned by the layer. Empty on backends that need none.
template <class Backend, class T>
struct attention_workspace {};

/// Causal scaled dot-product attention of every head (see `causal_attention_forward_args`).
/// Errors: none (sizes are the caller's contract).
template <class Backend, class T>
void causal_attention_forward(const causal_attention_forward_args<T>& args) {
  CPC_DISPATCH("causal_attention_forward", Backend, args);
}

/// Gradients of `causal_attention_forward` (see `causal_attention_backward_args`).
template <class Backend, class T>
void causal_attention_backward(const causal_attention_backward_args<T>& args,
                               attention_workspace<Backend, T>& ws) {
  CPC_DISPATCH("causal_attention_backward", Backend, args, ws);
}

}  // namespace cpc::ops
