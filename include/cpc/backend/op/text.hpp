#pragma once
/// Text ops: the token embedding lookup (gather) and its backward (scatter-add into the table),
/// and mean pooling over the valid prefix of each padded sequence and its backward. Every op takes
/// raw pointers into memory of its backend and is dispatched on the backend tag alone
/// (backend/dispatch.hpp). Sources: torch.nn.Embedding (with padding_idx), and the masked mean
/// `(x * mask).sum(1) / mask.sum(1)` over time of a padded batch (van den Oord et al. 2018,
/// section 3.3: the sentence encoder mean-pools its convolution over time).
#include <cstddef>
#include <cstdint>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Arguments of `embedding_forward`: y[i, :] = table[ids[i], :] for i < n, except y[i, :] = 0 where
/// ids[i] == padding (padding < 0: no padding id).
template <class T>
struct embedding_forward_args {
  std::size_t n = 0;                  ///< tokens
  std::size_t dim = 0;                ///< embedding width D
  std::int64_t padding = -1;          ///< the padding id, or -1
  const std::int32_t* ids = nullptr;  ///< `[n]` in [0, vocabulary) (checked by the layer)
  const T* table = nullptr;           ///< `[vocabulary, D]`
  T* y = nullptr;                     ///< `[n, D]`, overwritten
};

/// y = table[ids] row by row (see `embedding_forward_args`). Contract: every id is in
/// [0, vocabulary). Errors: none.
template <class Backend, class T>
void embedding_forward(const embedding_forward_args<T>& args) {
  CPC_DISPATCH("embedding_forward", Backend, args);
}

/// Arguments of `embedding_backward`: d_table[ids[i], :] += dy[i, :] for i < n with ids[i] != padding
/// (the padding row gets no gradient, as torch.nn.Embedding's padding_idx).
template <class T>
struct embedding_backward_args {
  std::size_t n = 0, dim = 0, vocabulary = 0;
  std::int64_t padding = -1;
  const std::int32_t* ids = nullptr;  ///< `[n]`
  const T* dy = nullptr;              ///< `[n, D]`
  T* d_table = nullptr;               ///< `[vocabulary, D]`, accumulated
};

/// Scatter-add of dy into the table's gradient; tokens are added in order 0..n-1 to each row, so
/// the result does not depend on the thread count. Contract: ids in [0, vocabulary). Errors: none.
template <class Backend, class T>
void embedding_backward(const embedding_backward_args<T>& args) {
  CPC_DISPATCH("embedding_backward", Backend, args);
}

/// Arguments of `masked_mean_pool`: `rows` sequences of `time` steps and `channels` channels, of
/// which the first lengths[r] steps are valid.
template <class T>
struct masked_mean_pool_args {
  std::size_t rows = 0, time = 0, channels = 0;
  const std::size_t* lengths = nullptr;  ///< `[rows]`, each <= time
  const T* x = nullptr;                  ///< `[rows, time, channels]`
  T* y = nullptr;                        ///< `[rows, channels]`, overwritten
};

/// y[r, c] = (1 / lengths[r]) sum_{t < lengths[r]} x[r, t, c]; 0 for a row of length 0.
/// Errors: none.
template <class Backend, class T>
void masked_mean_pool(const masked_mean_pool_args<T>& args) {
  CPC_DISPATCH("masked_mean_pool", Backend, args);
}

/// Arguments of `masked_mean_pool_backward` (shapes as `masked_mean_pool_args`).
template <class T>
struct masked_mean_pool_backward_args {
  std::size_t rows = 0, time = 0, channels = 0;
  const std::size_t* lengths = nullptr;  ///< `[rows]`
  const T* dy = nullptr;                 ///< `[rows, channels]`
  T* dx = nullptr;                       ///< `[rows, time, channels]`, overwritten
};

/// dx[r, t, c] = dy[r, c] / lengths[r] for t < lengths[r], 0 for the padding steps.
/// Errors: none.
template <class Backend, class T>
void masked_mean_pool_backward(const masked_mean_pool_backward_args<T>& args) {
  CPC_DISPATCH("masked_mean_pool_backward", Backend, args);
}

}  // namespace cpc::ops
