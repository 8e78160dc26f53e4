#pragma once
/// Tensor aliases and shape checks. Storage is xtensor, row-major, contiguous. Sequences are
/// `[batch, time, channels]`; audio is `[batch, samples]`. Source: DESIGN.md "Core decisions".
#include <array>
#include <cstddef>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>

#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include "cpc/core/error.hpp"

namespace cpc {

/// Fixed-rank, row-major, owning tensor.
template <class T, std::size_t N>
using tensor = xt::xtensor<T, N, xt::layout_type::row_major>;
/// `[batch, time, channels]` sequence tensor.
template <class T>
using tensor3 = tensor<T, 3>;
/// `[batch, height, width, channels]` image tensor (NHWC, row-major).
template <class T>
using tensor4 = tensor<T, 4>;
/// `[rows, cols]` matrix, e.g. audio `[batch, samples]` or a linear weight `[out, in]`.
template <class T>
using tensor2 = tensor<T, 2>;
/// `[n]` vector.
template <class T>
using tensor1 = tensor<T, 1>;
/// Dynamic-rank tensor, used for parameters and checkpoints.
template <class T>
using array = xt::xarray<T, xt::layout_type::row_major>;

/// Non-owning, dynamic-rank, row-major view of contiguous memory (an xtensor adaptor): what a
/// `cpc::parameter` exposes as `value` and `grad`. Element access works on host memory only.
/// Assigning to a view writes its elements; it never rebinds or resizes the memory.
template <class T>
using array_view = decltype(xt::adapt(std::declval<T*>(), std::size_t{}, xt::no_ownership(),
                                      std::declval<std::vector<std::size_t>>()));

/// Marks an extent that any value satisfies in `check_shape`.
inline constexpr std::ptrdiff_t any = -1;

/// Formats a shape as "[a, b, c]"; `any` prints as "*".
template <class S>
std::string shape_string(const S& shape) {
  std::ostringstream os;
  os << '[';
  bool first = true;
  for (auto d : shape) {
    if (!first) os << ", ";
    first = false;
    if (static_cast<std::ptrdiff_t>(d) == any)
      os << '*';
    else
      os << d;
  }
  os << ']';
  return os.str();
}

/// Checks `t.shape()` against `expected` (entries may be `any`).
/// Errors: throws `cpc::shape_error` "<where>: expected [..], got [..]" on rank or extent mismatch.
template <class E>
void check_shape(std::string_view where, const E& t, std::initializer_list<std::ptrdiff_t> expected) {
  const auto& s = t.shape();
  bool ok = s.size() == expected.size();
  if (ok) {
    std::size_t i = 0;
    for (auto e : expected) {
      if (e != any && static_cast<std::ptrdiff_t>(s[i]) != e) ok = false;
      ++i;
    }
  }
  if (!ok)
    throw shape_error(std::string(where) + ": expected " + shape_string(expected) + ", got " +
                      shape_string(s));
}

/// Resizes `t` to `shape` only when it differs, so buffers are reused across steps.
template <class Tensor, class Shape>
void ensure_shape(Tensor& t, const Shape& shape) {
  bool same = t.shape().size() == shape.size();
  if (same)
    for (std::size_t i = 0; i < shape.size(); ++i)
      if (t.shape()[i] != static_cast<std::size_t>(shape[i])) same = false;
  if (!same) t.resize(shape);
}

}  // namespace cpc
