#pragma once
/// The device variant of `cpc::parameter_store`: a model's flat value and gradient buffers in
/// device memory, which every parameter then views (so `p.value.data()` is a device pointer that
/// the CUDA ops take, and an optimiser updates the whole model in one kernel launch). Values and
/// gradients move between host and device only through the calls here (checkpoints, tests).
/// Plain C++ on the CUDA runtime; errors are `cpc::device_error`.
#include <cstddef>
#include <string>
#include <vector>

#include "cpc/backend/cuda/memory.hpp"
#include "cpc/backend/parameter_store.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/parameter.hpp"

namespace cpc {

/// Binds every parameter of a module into two flat device buffers, in visiting order, each slot
/// starting at a multiple of `parameter_alignment` scalars (zeros between), as the host store does.
/// The parameters' current values and gradients are uploaded; afterwards their `value` and `grad`
/// views point into device memory: shapes and `data()` stay usable on the host, elements do not
/// (read them with `values_to_host()` / `grads_to_host()`, or `download` a parameter). Neither
/// copyable nor movable. Errors: `device_error` when there is no device or memory runs out.
template <class T>
class parameter_store<T, cuda> {
 public:
  /// Binds `m`'s parameters (`m` must outlive the store's users).
  template <class Module>
  explicit parameter_store(Module& m) {
    std::size_t total = 0;
    m.for_each_parameter(
        [&](const std::string& name, parameter<T>& p) {
          list_.emplace_back(name, &p);
          total += round_up(p.size());
        },
        "");
    // Allocate first (no device, out of memory: the parameters are untouched), then stage on the
    // host (the parameters move into host slots), upload, and point the views at the device slots.
    values_.resize(total);
    grads_.resize(total);
    host_buffer<T> values(total, T(0)), grads(total, T(0));
    std::size_t offset = 0;
    for (auto& entry : list_) {
      entry.second->bind(values.data() + offset, grads.data() + offset);
      offset += round_up(entry.second->size());
    }
    try {
      values_.upload(values.data(), total);
      grads_.upload(grads.data(), total);
    } catch (...) {
      for (auto& entry : list_) *entry.second = parameter<T>(*entry.second);  // own memory again
      throw;
    }
    offset = 0;
    for (auto& entry : list_) {
      view(*entry.second, values_.data() + offset, grads_.data() + offset);
      offset += round_up(entry.second->size());
    }
    list_.flat = {values_.data(), grads_.data(), total};
  }
  parameter_store(const parameter_store&) = delete;
  parameter_store& operator=(const parameter_store&) = delete;
  parameter_store(parameter_store&&) = delete;
  parameter_store& operator=(parameter_store&&) = delete;

  /// The bound parameters with their names, in visiting order, flat (device) buffers attached.
  const named_parameter_list<T>& parameters() const { return list_; }
  /// Scalars per flat buffer (parameters plus alignment padding).
  std::size_t size() const { return values_.size(); }
  /// The flat value buffer `[size()]` (device memory).
  T* values() { return values_.data(); }
  /// The flat gradient buffer `[size()]` (device memory).
  T* grads() { return grads_.data(); }

  /// A host copy of the flat value buffer `[size()]`.
  std::vector<T> values_to_host() const { return values_.to_host(); }
  /// A host copy of the flat gradient buffer `[size()]`.
  std::vector<T> grads_to_host() const { return grads_.to_host(); }
  /// Replaces the flat value buffer with `size()` scalars of host memory.
  void values_from_host(const T* src) { values_.upload(src, values_.size()); }
  /// Replaces the flat gradient buffer with `size()` scalars of host memory.
  void grads_from_host(const T* src) { grads_.upload(src, grads_.size()); }
  /// A host copy of parameter `i`'s value (visiting order), shaped like it.
  array<T> value_to_host(std::size_t i) const { return slot_to_host(values_, i); }
  /// A host copy of parameter `i`'s gradient, shaped like it.
  array<T> grad_to_host(std::size_t i) const { return slot_to_host(grads_, i); }

 private:
  static std::size_t round_up(std::size_t n) {
    return (n + parameter_alignment - 1) / parameter_alignment * parameter_alignment;
  }
  // Points p's public views at device slots (what `parameter::bind` does without its host copy).
  static void view(parameter<T>& p, T* v, T* g) {
    const std::vector<std::size_t> shape = p.shape();
    const std::size_t n = p.size();
    p.value.reset_buffer(v, n);
    p.grad.reset_buffer(g, n);
    p.value.resize(shape);
    p.grad.resize(shape);
  }
  array<T> slot_to_host(const device_buffer<T>& b, std::size_t i) const {
    const parameter<T>& p = *list_.at(i).second;
    array<T> out = array<T>::from_shape(p.shape());
    b.download(out.data(), p.size(), static_cast<std::size_t>(p.value.data() - values_.data()));
    return out;
  }

  named_parameter_list<T> list_;
  device_buffer<T> values_, grads_;
};

}  // namespace cpc
