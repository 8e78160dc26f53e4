#pragma once
/// The flat parameter buffers of a model: one value buffer and one gradient buffer, allocated by
/// the backend, that every parameter of the model views (DESIGN.md: "The model owns one flat
/// value buffer and one flat gradient buffer; layers hold views"). Optimisers then update the
/// whole model in one pass (one kernel launch on a device).
#include <cstddef>
#include <string>
#include <utility>

#include "cpc/backend/storage.hpp"
#include "cpc/core/parameter.hpp"

namespace cpc {

/// Binds every parameter of a module (anything with `for_each_parameter`) into two flat buffers
/// allocated by `Backend`, in visiting order, each slot starting at a multiple of
/// `parameter_alignment` scalars (zero padding between slots). Values and gradients keep their
/// contents. Neither copyable nor movable: parameters and optimisers point into its buffers, so
/// it lives exactly as long as the module that holds it.
/// Errors: none beyond allocation failure (`std::bad_alloc`).
template <class T, class Backend>
class parameter_store {
 public:
  /// Binds `m`'s parameters; `m` must outlive the store's users (it is usually the store's owner).
  template <class Module>
  explicit parameter_store(Module& m) {
    std::size_t total = 0;
    m.for_each_parameter(
        [&](const std::string& name, parameter<T>& p) {
          list_.emplace_back(name, &p);
          total += round_up(p.size());
        },
        "");
    values_.assign(total, T(0));
    grads_.assign(total, T(0));
    std::size_t offset = 0;
    for (auto& [name, p] : list_) {
      p->bind(values_.data() + offset, grads_.data() + offset);
      offset += round_up(p->size());
    }
    list_.flat = {values_.data(), grads_.data(), total};
  }
  parameter_store(const parameter_store&) = delete;
  parameter_store& operator=(const parameter_store&) = delete;
  parameter_store(parameter_store&&) = delete;
  parameter_store& operator=(parameter_store&&) = delete;

  /// The bound parameters with their names, in visiting order, flat buffers attached.
  const named_parameter_list<T>& parameters() const { return list_; }
  /// Scalars per flat buffer (parameters plus alignment padding).
  std::size_t size() const { return values_.size(); }
  /// The flat value buffer `[size()]`.
  T* values() { return values_.data(); }
  /// The flat gradient buffer `[size()]`.
  T* grads() { return grads_.data(); }

 private:
  static std::size_t round_up(std::size_t n) {
    return (n + parameter_alignment - 1) / parameter_alignment * parameter_alignment;
  }
  named_parameter_list<T> list_;
  buffer_for<T, Backend> values_, grads_;
};

}  // namespace cpc
