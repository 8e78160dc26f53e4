#pragma once
/// A learnable parameter: a named value tensor and its gradient of the same shape.
/// Layers own their parameters and expose them through `for_each_parameter(f, prefix)`, which
/// calls `f(std::string name, parameter<T>&)` with PyTorch-style dotted names
/// (e.g. "encoder.conv0.weight") so weights can be exchanged with PyTorch state dicts.
#include <string>
#include <string_view>
#include <vector>

#include "cpc/core/tensor.hpp"

namespace cpc {

/// Value and gradient, both row-major with identical shapes. `grad` accumulates in backward
/// passes; optimisers read it and callers zero it with `zero_grad()`.
template <class T>
struct parameter {
  array<T> value;
  array<T> grad;

  parameter() = default;
  /// Allocates a zero value and zero gradient of `shape` (e.g. `{out, in, kernel}`).
  explicit parameter(std::vector<std::size_t> shape)
      : value(array<T>::from_shape(shape)), grad(array<T>::from_shape(shape)) {
    value.fill(T(0));
    grad.fill(T(0));
  }
  /// Number of scalars.
  std::size_t size() const { return value.size(); }
  /// Sets the gradient to zero.
  void zero_grad() { grad.fill(T(0)); }
};

/// Joins a prefix and a name with a dot: ("encoder.conv0", "weight") -> "encoder.conv0.weight".
inline std::string join_name(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  std::string out(prefix);
  out += '.';
  out += name;
  return out;
}

/// Collects (name, parameter*) pairs of any object with `for_each_parameter`, in visiting order.
template <class T, class Module>
std::vector<std::pair<std::string, parameter<T>*>> named_parameters(Module& m, std::string_view prefix = "") {
  std::vector<std::pair<std::string, parameter<T>*>> out;
  m.for_each_parameter([&](const std::string& name, parameter<T>& p) { out.emplace_back(name, &p); }, prefix);
  return out;
}

/// Number of learnable scalars of any object with `for_each_parameter`.
template <class T, class Module>
std::size_t parameter_count(Module& m) {
  std::size_t n = 0;
  m.for_each_parameter([&](const std::string&, parameter<T>& p) { n += p.size(); }, "");
  return n;
}

/// Zeroes every gradient of `m`.
template <class T, class Module>
void zero_grad(Module& m) {
  m.for_each_parameter([](const std::string&, parameter<T>& p) { p.zero_grad(); }, "");
}

}  // namespace cpc
