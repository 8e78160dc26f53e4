#pragma once
/// A learnable parameter: a named value tensor and its gradient of the same shape, seen through
/// views (`value`, `grad`) of memory that is either the parameter's own (a layer built on its own)
/// or a slot of a model's flat buffers (`cpc::parameter_store`, after `bind`).
/// Layers expose their parameters through `for_each_parameter(f, prefix)`, which calls
/// `f(std::string name, parameter<T>&)` with PyTorch-style dotted names (e.g.
/// "encoder.conv0.weight") so weights can be exchanged with PyTorch state dicts.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cpc/core/memory.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Value and gradient, both row-major with identical shapes. `grad` accumulates in backward
/// passes; optimisers read it and callers zero it with `zero_grad()`.
/// Storage: a parameter built from a shape owns zeroed host memory; `bind` moves its contents
/// into caller-owned slots (a model's flat buffers) and views them from then on. Copies are deep
/// and own their memory; moves keep the memory (owned or bound) and leave the source empty.
/// `value` and `grad` are views, as PyTorch's `param.data` is: `auto v = p.value;` aliases the
/// parameter's memory; copy with `cpc::array<T> v = p.value;`.
template <class T>
class parameter {
 public:
  /// View types of `value` and `grad` (`cpc::array_view<T>`).
  using view_type = array_view<T>;
  view_type value;
  view_type grad;

  /// An empty parameter (shape [0]).
  parameter() : parameter(std::vector<std::size_t>{0}) {}
  /// Owns a zero value and a zero gradient of `shape` (e.g. `{out, in, kernel}`).
  explicit parameter(std::vector<std::size_t> shape)
      : value(make_view(nullptr, shape)), grad(make_view(nullptr, shape)) {
    const std::size_t n = count(shape);
    own_.assign(2 * n, T(0));
    point_to(own_.data(), own_.data() + n, std::move(shape));
  }
  parameter(const parameter& o) : parameter(o.shape()) { copy_contents(o); }
  parameter(parameter&& o) noexcept
      : value(std::move(o.value)), grad(std::move(o.grad)), own_(std::move(o.own_)) {
    o.reset_empty();
  }
  parameter& operator=(const parameter& o) {
    if (this != &o) {
      own_.assign(2 * o.size(), T(0));
      point_to(own_.data(), own_.data() + o.size(), o.shape());
      copy_contents(o);
    }
    return *this;
  }
  parameter& operator=(parameter&& o) noexcept {
    if (this != &o) {
      own_ = std::move(o.own_);
      point_to(o.value.data(), o.grad.data(), o.shape());
      o.reset_empty();
    }
    return *this;
  }

  /// Number of scalars.
  std::size_t size() const { return value.size(); }
  /// The shape (`value` and `grad` share it).
  std::vector<std::size_t> shape() const { return {value.shape().begin(), value.shape().end()}; }
  /// Sets the gradient to zero.
  void zero_grad() { std::fill_n(grad.data(), grad.size(), T(0)); }
  /// Whether the memory is the parameter's own (false after `bind`).
  bool owns_memory() const { return !own_.empty() || size() == 0; }

  /// Copies value and gradient into `value_slot` and `grad_slot` (each `size()` scalars of host
  /// memory that the caller keeps alive), views them from now on and frees the own memory.
  void bind(T* value_slot, T* grad_slot) {
    std::copy_n(value.data(), size(), value_slot);
    std::copy_n(grad.data(), size(), grad_slot);
    point_to(value_slot, grad_slot, shape());
    host_buffer<T>().swap(own_);
  }

 private:
  static std::size_t count(const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  static view_type make_view(T* p, const std::vector<std::size_t>& shape) {
    return xt::adapt(static_cast<T*>(p), p == nullptr ? 0 : count(shape), xt::no_ownership(),
                     p == nullptr ? std::vector<std::size_t>{0} : shape);
  }
  void point_to(T* v, T* g, std::vector<std::size_t> shape) {
    const std::size_t n = count(shape);
    value.reset_buffer(v, n);
    grad.reset_buffer(g, n);
    value.resize(shape);
    grad.resize(std::move(shape));
  }
  void reset_empty() { point_to(nullptr, nullptr, {0}); }
  void copy_contents(const parameter& o) {
    std::copy_n(o.value.data(), o.size(), value.data());
    std::copy_n(o.grad.data(), o.size(), grad.data());
  }

  host_buffer<T> own_;  // [value | grad] while the parameter owns its memory
};

/// Joins a prefix and a name with a dot: ("encoder.conv0", "weight") -> "encoder.conv0.weight".
inline std::string join_name(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  std::string out(prefix);
  out += '.';
  out += name;
  return out;
}

/// Where a parameter list lives when every parameter is a slot of one pair of flat buffers (a
/// model's `parameter_store`): `values` and `grads` hold `size` scalars each, the parameters in list
/// order, each slot starting at a multiple of `parameter_alignment` scalars, zeros in between.
/// Optimisers then update the whole model in one pass over the flat buffers.
template <class T>
struct flat_parameters {
  T* values = nullptr;
  T* grads = nullptr;
  std::size_t size = 0;
  explicit operator bool() const { return values != nullptr; }
};

/// Scalars between the starts of consecutive slots of a flat parameter buffer are a multiple of
/// this (64 bytes of float), so each parameter starts aligned for SIMD loads.
inline constexpr std::size_t parameter_alignment = 16;

/// (name, parameter*) pairs, as returned by `cpc::named_parameters(module)` or a model's
/// `parameters()`; `flat` is set when they are the slots of one flat buffer pair (see
/// `flat_parameters`). The pointed-to parameters must outlive whatever holds the list.
template <class T>
class named_parameter_list : public std::vector<std::pair<std::string, parameter<T>*>> {
 public:
  using std::vector<std::pair<std::string, parameter<T>*>>::vector;
  flat_parameters<T> flat{};
};

/// Collects (name, parameter*) pairs of any object with `for_each_parameter`, in visiting order.
template <class T, class Module>
named_parameter_list<T> named_parameters(Module& m, std::string_view prefix = "") {
  named_parameter_list<T> out;
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
