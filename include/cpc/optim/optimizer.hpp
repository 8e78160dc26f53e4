#pragma once
/// What every optimiser shares: the list of named parameters it updates, the layout of its state
/// buffers, the learning rate and the step count. Source: the torch.optim.Optimizer contract (one
/// parameter group).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Checks a parameter list: no null pointers, and each gradient has its value's shape.
/// Errors: `cpc::config_error` for a null parameter; `cpc::shape_error`
/// "<where>: gradient of '<name>': expected [..], got [..]" for a mismatched gradient.
template <class T>
void check_parameter_list(std::string_view where, const named_parameter_list<T>& params) {
  for (const auto& [name, p] : params) {
    if (p == nullptr) throw config_error(std::string(where) + ": parameter '" + name + "' is null");
    if (p->grad.shape() != p->value.shape())
      throw shape_error(std::string(where) + ": gradient of '" + name + "': expected " +
                        shape_string(p->value.shape()) + ", got " + shape_string(p->grad.shape()));
  }
}

/// Scalars per chunk in the norm and finiteness reductions (partial sums are combined in chunk
/// order, so the result does not depend on the thread count). Chunks never span two parameters.
inline constexpr std::size_t optimizer_chunk_size = 16384;

/// Base of `cpc::adam`, `cpc::sgd` and `cpc::rmsprop`: owns the parameter list, the learning rate, the step
/// count and the layout of the state buffers. State lives in flat buffers allocated by `Backend`, laid out
/// like the parameters: when the list is a model's flat buffers (`flat` set) the state has the same slots and
/// one update covers the whole model; otherwise parameter i's state starts after the sizes of parameters
/// 0..i-1 and the update runs per parameter.
template <class T, class Backend>
class optimizer_base {
 public:
  /// The current learning rate.
  double learning_rate() const { return lr_; }
  /// Sets the learning rate used by the next `step()` (schedules call this before each step).
  /// Errors: `cpc::config_error` when `lr` is negative or not finite.
  void set_learning_rate(double lr) {
    if (!(lr >= 0.0) || lr == std::numeric_limits<double>::infinity())
      throw config_error(name_ + ": expected a finite learning rate >= 0, got " + std::to_string(lr));
    lr_ = lr;
  }
  /// Number of `step()` calls so far (torch's per-parameter "step" state).
  std::uint64_t steps() const { return steps_; }
  /// Restores the step count saved from `steps()` (checkpoints). Restore the state tensors
  /// through `for_each_state` as well.
  void set_steps(std::uint64_t n) { steps_ = n; }
  /// The parameters this optimiser updates, in order.
  const named_parameter_list<T>& parameters() const { return params_; }
  /// Zeroes every gradient (one pass over the flat gradient buffer when there is one).
  void zero_grad() {
    for_each_run([&](T*, T* grad, std::size_t, std::size_t n) {
      ops::fill<Backend>(ops::fill_args<T>{.n = n, .value = T(0), .y = grad});
    });
  }

 protected:
  optimizer_base(std::string name, named_parameter_list<T> params, double lr)
      : name_(std::move(name)), params_(std::move(params)) {
    check_parameter_list(name_, params_);
    set_learning_rate(lr);
    std::size_t offset = 0;
    for (const auto& [pname, p] : params_) {
      shapes_.emplace_back(p->value.shape().begin(), p->value.shape().end());
      offsets_.push_back(params_.flat ? static_cast<std::size_t>(p->value.data() - params_.flat.values)
                                      : offset);
      offset += p->size();
    }
    state_size_ = params_.flat ? params_.flat.size : offset;
  }

  /// A zero state buffer laid out like the parameters (see the class comment).
  buffer_for<T, Backend> zero_state() const {
    buffer_for<T, Backend> s(state_size_);
    ops::fill<Backend>(ops::fill_args<T>{.n = state_size_, .value = T(0), .y = s.data()});
    return s;
  }

  /// A view of parameter i's slot in state buffer `s`, shaped like the parameter.
  array_view<T> state_view(buffer_for<T, Backend>& s, std::size_t i) const {
    return xt::adapt(static_cast<T*>(s.data() + offsets_[i]), params_[i].second->size(), xt::no_ownership(),
                     shapes_[i]);
  }

  /// Checks the parameter list again before an update, since a caller may have resized a value or
  /// gradient since construction.
  /// Errors: `cpc::shape_error` naming the parameter whose gradient or value shape is wrong.
  void check_parameters() const {
    check_parameter_list(name_, params_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto& s = params_[i].second->value.shape();
      if (!std::equal(s.begin(), s.end(), shapes_[i].begin(), shapes_[i].end()))
        throw shape_error(name_ + ": parameter '" + params_[i].first +
                          "' changed shape since the optimiser " + "was built: expected " +
                          shape_string(shapes_[i]) + ", got " + shape_string(s));
    }
  }

  /// Calls `f(value, grad, state_offset, n)` for each contiguous run of parameters: once over the
  /// flat buffers when the list has them, else once per parameter.
  template <class F>
  void for_each_run(F&& f) {
    if (params_.flat) {
      f(params_.flat.values, params_.flat.grads, std::size_t{0}, params_.flat.size);
      return;
    }
    for (std::size_t i = 0; i < params_.size(); ++i)
      f(params_[i].second->value.data(), params_[i].second->grad.data(), offsets_[i],
        params_[i].second->size());
  }

  std::string name_;
  named_parameter_list<T> params_;
  std::vector<std::vector<std::size_t>> shapes_;
  std::vector<std::size_t> offsets_;  // start of each parameter's slot in a state buffer
  std::size_t state_size_ = 0;
  double lr_ = 0;
  std::uint64_t steps_ = 0;
};

}  // namespace cpc
