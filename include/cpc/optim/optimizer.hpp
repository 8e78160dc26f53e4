#pragma once
/// What every optimiser shares: the list of named parameters it updates, the fixed chunking of
/// their elements for deterministic parallel element-wise updates, the learning rate and the step
/// count. Source: the torch.optim.Optimizer contract (one parameter group).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"

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

/// Elements per parallel task in optimiser updates, gradient clipping and finiteness checks.
inline constexpr std::size_t optimizer_chunk_size = 16384;

/// A contiguous run of one parameter's elements: parameter index, first element, element count.
struct parameter_chunk {
  std::size_t param = 0;
  std::size_t begin = 0;
  std::size_t count = 0;
};

/// Splits every parameter of a list into chunks of at most `chunk_size` elements. The split
/// depends only on the parameter sizes, so a loop over chunks gives the same result for any
/// thread count. Chunks never span two parameters.
template <class T>
std::vector<parameter_chunk> make_parameter_chunks(const named_parameter_list<T>& params,
                                                   std::size_t chunk_size) {
  std::vector<parameter_chunk> chunks;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::size_t n = params[i].second->size();
    for (std::size_t b = 0; b < n; b += chunk_size) chunks.push_back({i, b, std::min(chunk_size, n - b)});
  }
  return chunks;
}

/// Base of `cpc::adam` and `cpc::sgd`: owns the parameter list, the learning rate, the step count
/// and the chunking. Derived classes implement `step()` with `for_each_chunk`.
template <class T>
class optimizer_base {
 public:
  /// Elements per parallel task in the element-wise update.
  static constexpr std::size_t chunk_size = optimizer_chunk_size;

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
  /// Zeroes every parameter gradient.
  void zero_grad() {
    for (auto& [name, p] : params_) p->zero_grad();
  }

 protected:
  optimizer_base(std::string name, named_parameter_list<T> params, double lr)
      : name_(std::move(name)), params_(std::move(params)) {
    check_parameter_list(name_, params_);
    set_learning_rate(lr);
    chunks_ = make_parameter_chunks(params_, chunk_size);
    for (const auto& [name, p] : params_)
      shapes_.emplace_back(p->value.shape().begin(), p->value.shape().end());
  }

  /// Allocates one zero state tensor per parameter, shaped like its value.
  std::vector<array<T>> zero_state() const {
    std::vector<array<T>> s;
    s.reserve(params_.size());
    for (const auto& [name, p] : params_) {
      s.push_back(array<T>::from_shape(p->value.shape()));
      s.back().fill(T(0));
    }
    return s;
  }

  /// Checks that state tensors restored through `for_each_state` kept their parameters' shapes.
  /// Errors: `cpc::shape_error` "<optimiser>: state '<prefix>.<param>': expected [..], got [..]".
  void check_state(const std::vector<array<T>>& state, std::string_view prefix) const {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto& s = state[i].shape();
      if (!std::equal(s.begin(), s.end(), shapes_[i].begin(), shapes_[i].end()))
        throw shape_error(name_ + ": state '" + std::string(prefix) + "." + params_[i].first +
                          "': expected " + shape_string(shapes_[i]) + ", got " + shape_string(s));
    }
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

  /// Calls `f(param_index, begin, count)` for every chunk, in parallel (after `check_parameters`).
  template <class F>
  void for_each_chunk(F&& f) {
    parallel_for(0, chunks_.size(), [&](std::size_t c) {
      const auto& ch = chunks_[c];
      f(ch.param, ch.begin, ch.count);
    });
  }

  std::string name_;
  named_parameter_list<T> params_;
  std::vector<parameter_chunk> chunks_;
  std::vector<std::vector<std::size_t>> shapes_;
  double lr_ = 0;
  std::uint64_t steps_ = 0;
};

}  // namespace cpc
