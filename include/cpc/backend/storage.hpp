#pragma once
/// Storage that knows its backend: `buffer_for<T, Backend>` (flat) and `tensor_for<T, N, Backend>`
/// (shaped) are the types `Backend::memory` allocates, and `to<Backend>(t)` is the one way data
/// moves between backends. Nothing converts implicitly between two memory spaces; the host
/// backends (`cpu`, `reference`) share host memory, so between them `to` is a copy.
/// Source: DESIGN.md "Core decisions" (storage allocated by its backend, explicit moves).
#include <cstddef>
#include <type_traits>

#include "cpc/backend/tags.hpp"

namespace cpc {

/// Whether `Backend`'s memory space exists in this translation unit: true where it has kernels
/// (`backend_available`), and for `cuda` also where only its runtime (backend/cuda/memory.hpp,
/// host compiler) is included, so that host code can move data to and from the device.
template <class Backend>
inline constexpr bool memory_available = backend_available<Backend>;

namespace detail {
/// Memory of an unavailable backend: host types stand in so that a class templated on it reports
/// only `report_unavailable`'s error, never a cascade; nothing can move data into it (`to`).
struct unavailable_memory : host_memory {
  static constexpr bool host_accessible = false;
};
template <class Backend, bool = memory_available<Backend>>
struct memory_of {
  using type = typename Backend::memory;
};
template <class Backend>
struct memory_of<Backend, false> {
  using type = unavailable_memory;
};
}  // namespace detail

/// Flat storage of `T` allocated by `Backend` (host: `cpc::host_buffer<T>`, 64-byte aligned).
template <class T, class Backend>
using buffer_for = typename detail::memory_of<Backend>::type::template buffer<T>;

/// Shaped owning tensor allocated by `Backend` (host: `cpc::tensor<T, N>`, row-major xtensor).
template <class T, std::size_t N, class Backend>
using tensor_for = typename detail::memory_of<Backend>::type::template tensor<T, N>;

/// Whether CPU code may read memory of `Backend` directly.
template <class Backend>
inline constexpr bool host_accessible = detail::memory_of<Backend>::type::host_accessible;

/// A copy of host tensor `t` allocated by backend `Dst`. Shapes are kept.
/// Errors: none on the host backends; a device backend adds its own overload (and throws
/// `cpc::error` subclasses on failed transfers); an unavailable backend stops compilation with
/// `report_unavailable`'s message.
template <class Dst, class Tensor>
requires(host_accessible<Dst> || !memory_available<Dst>) auto to(const Tensor& t) {
  static_assert(report_unavailable<Dst>());
  using T = std::remove_cv_t<std::remove_reference_t<decltype(*t.data())>>;
  constexpr std::size_t N = std::tuple_size_v<std::remove_cvref_t<decltype(t.shape())>>;
  return tensor_for<T, N, Dst>(t);
}

}  // namespace cpc
