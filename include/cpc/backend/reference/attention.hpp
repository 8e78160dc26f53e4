#pragma once
/// reference kernels of the attention ops (backend/op/attention.hpp): the formulas of the argument
/// structs as plain loops, one thread, every sum accumulated in double.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "cpc/backend/op/attention.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// reference causal_attention_forward.
template <class T>
void run(reference, const causal_attention_forward_args<T>& a) {
  const std::size_t L = a.time, H = a.heads, dk = a.head_dim, D = H * dk;
  std::vector<double> s(L);
  for (std::size_t b = 0; b < a.batch; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < L; ++i) {
        const T* qi = a.q + (b * L + i) * D + h * dk;
        double mx = -INFINITY;
        for (std::size_t j = 0; j <= i; ++j) {
          const T* kj = a.k + (b * L + j) * D + h * dk;
          double dot = 0;
          for (std::size_t c = 0; c < dk; ++c) dot += static_cast<double>(qi[c]) * kj[c];
          if (a.rel != nullptr) {
            const std::size_t col = a.rel_len - 1 - (i - j);
            for (std::size_t c = 0; c < dk; ++c)
              dot += static_cast<double>(qi[c]) * a.rel[c * a.rel_len + col];
          }
          s[j] = a.scale * dot;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (std::size_t j = 0; j <= i; ++j) sum += (s[j] = std::exp(s[j] - mx));
        T* p = a.probs + ((b * H + h) * L + i) * L;
        for (std::size_t j = 0; j < L; ++j) p[j] = j <= i ? static_cast<T>(s[j] / sum) : T(0);
        T* o = a.out + (b * L + i) * D + h * dk;
        for (std::size_t c = 0; c < dk; ++c) {
          double acc = 0;
          for (std::size_t j = 0; j <= i; ++j) acc += (s[j] / sum) * a.v[(b * L + j) * D + h * dk + c];
          o[c] = static_cast<T>(acc);
        }
      }
}

/// reference causal_attention_backward.
template <class T>
void run(reference, const causal_attention_backward_args<T>& a, attention_workspace<reference, T>&) {
  const std::size_t L = a.time, H = a.heads, dk = a.head_dim, D = H * dk, S = a.rel_len;
  const std::size_t n = a.batch * L * D;
  std::vector<double> dq(n, 0.0), dkk(n, 0.0), dv(n, 0.0), drel(a.d_rel ? dk * S : 0, 0.0), g(L);
  for (std::size_t b = 0; b < a.batch; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < L; ++i) {
        const std::size_t qo = (b * L + i) * D + h * dk;
        const T* p = a.probs + ((b * H + h) * L + i) * L;
        double mean = 0;
        for (std::size_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (std::size_t c = 0; c < dk; ++c)
            dot += static_cast<double>(a.dout[qo + c]) * a.v[(b * L + j) * D + h * dk + c];
          g[j] = dot;
          mean += static_cast<double>(p[j]) * dot;
        }
        for (std::size_t j = 0; j <= i; ++j) {
          const std::size_t ko = (b * L + j) * D + h * dk;
          const double ds = static_cast<double>(p[j]) * (g[j] - mean) * a.scale;
          const std::size_t col = S - 1 - (i - j);
          for (std::size_t c = 0; c < dk; ++c) {
            dv[ko + c] += static_cast<double>(p[j]) * a.dout[qo + c];
            double key = a.k[ko + c];
            if (a.rel != nullptr) key += a.rel[c * S + col];
            dq[qo + c] += ds * key;
            dkk[ko + c] += ds * a.q[qo + c];
            if (a.d_rel != nullptr) drel[c * S + col] += ds * a.q[qo + c];
          }
        }
      }
  for (std::size_t i = 0; i < n; ++i) {
    a.dq[i] = static_cast<T>(dq[i]);
    a.dk[i] = static_cast<T>(dkk[i]);
    a.dv[i] = static_cast<T>(dv[i]);
  }
  for (std::size_t i = 0; i < drel.size(); ++i) a.d_rel[i] += static_cast<T>(drel[i]);
}

}  // namespace cpc::ops
