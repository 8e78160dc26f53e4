#pragma once
/// cpu kernels of the attention ops (backend/op/attention.hpp): one task per (item, head), each
/// owning its slices of the outputs, so results do not depend on the thread count. The relative
/// term's gradient is summed per task into the workspace and then over tasks in a fixed order.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "cpc/backend/op/attention.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

/// cpu scratch of `causal_attention_backward`: the relative term's gradient per (item, head)
/// `[batch * heads, head_dim, rel_len]`, and per task a row of softmax-gradient terms.
template <class T>
struct attention_workspace<cpu, T> {
  host_buffer<T> d_rel_parts;
  host_buffer<T> rows;
};

/// cpu causal_attention_forward.
template <class T>
void run(cpu, const causal_attention_forward_args<T>& a) {
  const std::size_t L = a.time, H = a.heads, dk = a.head_dim, D = H * dk, S = a.rel_len;
  const T scale = static_cast<T>(a.scale);
  parallel_for(0, a.batch * H, [&](std::size_t task) {
    const std::size_t b = task / H, h = task % H;
    const T* q = a.q + b * L * D + h * dk;
    const T* k = a.k + b * L * D + h * dk;
    const T* v = a.v + b * L * D + h * dk;
    T* out = a.out + b * L * D + h * dk;
    for (std::size_t i = 0; i < L; ++i) {
      const T* qi = q + i * D;
      T* p = a.probs + (task * L + i) * L;
      T mx = -INFINITY;
      for (std::size_t j = 0; j <= i; ++j) {
        const T* kj = k + j * D;
        T dot = 0;
        for (std::size_t c = 0; c < dk; ++c) dot += qi[c] * kj[c];
        if (a.rel != nullptr) {
          const T* r = a.rel + (S - 1 - (i - j));
          for (std::size_t c = 0; c < dk; ++c) dot += qi[c] * r[c * S];
        }
        p[j] = scale * dot;
        mx = std::max(mx, p[j]);
      }
      T sum = 0;
      for (std::size_t j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - mx));
      const T inv = T(1) / sum;
      for (std::size_t j = 0; j <= i; ++j) p[j] *= inv;
      std::fill(p + i + 1, p + L, T(0));
      T* o = out + i * D;
      std::fill(o, o + dk, T(0));
      for (std::size_t j = 0; j <= i; ++j) {
        const T w = p[j];
        const T* vj = v + j * D;
        for (std::size_t c = 0; c < dk; ++c) o[c] += w * vj[c];
      }
    }
  });
}

/// cpu causal_attention_backward.
template <class T>
void run(cpu, const causal_attention_backward_args<T>& a, attention_workspace<cpu, T>& ws) {
  const std::size_t L = a.time, H = a.heads, dk = a.head_dim, D = H * dk, S = a.rel_len;
  const std::size_t tasks = a.batch * H, rel_size = dk * S;
  const T scale = static_cast<T>(a.scale);
  if (a.d_rel != nullptr) ensure_size(ws.d_rel_parts, tasks * rel_size);
  ensure_size(ws.rows, tasks * L);
  parallel_for(0, tasks, [&](std::size_t task) {
    const std::size_t b = task / H, h = task % H, off = b * L * D + h * dk;
    const T *q = a.q + off, *k = a.k + off, *v = a.v + off, *dout = a.dout + off;
    T *dq = a.dq + off, *dkk = a.dk + off, *dv = a.dv + off;
    T* drel = a.d_rel != nullptr ? ws.d_rel_parts.data() + task * rel_size : nullptr;
    T* ds = ws.rows.data() + task * L;
    if (drel != nullptr) std::fill(drel, drel + rel_size, T(0));
    for (std::size_t i = 0; i < L; ++i) {
      std::fill(dq + i * D, dq + i * D + dk, T(0));
      std::fill(dkk + i * D, dkk + i * D + dk, T(0));
      std::fill(dv + i * D, dv + i * D + dk, T(0));
    }
    for (std::size_t i = 0; i < L; ++i) {
      const T* p = a.probs + (task * L + i) * L;
      const T* gi = dout + i * D;
      const T* qi = q + i * D;
      T mean = 0;
      for (std::size_t j = 0; j <= i; ++j) {
        const T* vj = v + j * D;
        T dot = 0;
        for (std::size_t c = 0; c < dk; ++c) dot += gi[c] * vj[c];
        ds[j] = dot;
        mean += p[j] * dot;
      }
      T* dqi = dq + i * D;
      for (std::size_t j = 0; j <= i; ++j) {
        const T w = p[j], g = scale * w * (ds[j] - mean);
        const T* kj = k + j * D;
        T* dkj = dkk + j * D;
        T* dvj = dv + j * D;
        for (std::size_t c = 0; c < dk; ++c) {
          dvj[c] += w * gi[c];
          dqi[c] += g * kj[c];
          dkj[c] += g * qi[c];
        }
        if (a.rel != nullptr) {
          const std::size_t col = S - 1 - (i - j);
          const T* r = a.rel + col;
          for (std::size_t c = 0; c < dk; ++c) dqi[c] += g * r[c * S];
          if (drel != nullptr)
            for (std::size_t c = 0; c < dk; ++c) drel[c * S + col] += g * qi[c];
        }
      }
    }
  });
  if (a.d_rel == nullptr) return;
  // Sum the tasks' parts in task order; each task owns a column block of d_rel.
  parallel_for(0, dk, [&](std::size_t c) {
    for (std::size_t t = 0; t < tasks; ++t) {
      const T* part = ws.d_rel_parts.data() + t * rel_size + c * S;
      for (std::size_t col = 0; col < S; ++col) a.d_rel[c * S + col] += part[col];
    }
  });
}

}  // namespace cpc::ops
