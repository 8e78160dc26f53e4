#pragma once
/// reference kernels of the text ops (backend/op/text.hpp): plain loops, one thread, sums in
/// double (the test oracle).
#include <cstddef>
#include <cstdint>

#include "cpc/backend/op/text.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// reference embedding_forward.
template <class T>
void run(reference, const embedding_forward_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i)
    for (std::size_t c = 0; c < a.dim; ++c)
      a.y[i * a.dim + c] =
          a.ids[i] == a.padding ? T(0) : a.table[static_cast<std::size_t>(a.ids[i]) * a.dim + c];
}

/// reference embedding_backward: per table element, the sum in double of its tokens' gradients in
/// token order, added to the element.
template <class T>
void run(reference, const embedding_backward_args<T>& a) {
  for (std::size_t v = 0; v < a.vocabulary; ++v) {
    if (static_cast<std::int64_t>(v) == a.padding) continue;
    for (std::size_t c = 0; c < a.dim; ++c) {
      double s = 0;
      bool any = false;
      for (std::size_t i = 0; i < a.n; ++i)
        if (static_cast<std::size_t>(a.ids[i]) == v) {
          s += static_cast<double>(a.dy[i * a.dim + c]);
          any = true;
        }
      if (any) a.d_table[v * a.dim + c] = static_cast<T>(static_cast<double>(a.d_table[v * a.dim + c]) + s);
    }
  }
}

/// reference masked_mean_pool.
template <class T>
void run(reference, const masked_mean_pool_args<T>& a) {
  for (std::size_t r = 0; r < a.rows; ++r)
    for (std::size_t c = 0; c < a.channels; ++c) {
      double s = 0;
      const std::size_t len = a.lengths[r];
      for (std::size_t t = 0; t < len; ++t) s += static_cast<double>(a.x[(r * a.time + t) * a.channels + c]);
      a.y[r * a.channels + c] = len == 0 ? T(0) : static_cast<T>(s / static_cast<double>(len));
    }
}

/// reference masked_mean_pool_backward.
template <class T>
void run(reference, const masked_mean_pool_backward_args<T>& a) {
  for (std::size_t r = 0; r < a.rows; ++r)
    for (std::size_t t = 0; t < a.time; ++t)
      for (std::size_t c = 0; c < a.channels; ++c)
        a.dx[(r * a.time + t) * a.channels + c] =
            t < a.lengths[r] ? static_cast<T>(static_cast<double>(a.dy[r * a.channels + c]) /
                                              static_cast<double>(a.lengths[r]))
                             : T(0);
}

}  // namespace cpc::ops
