#pragma once
#include <string>
#include <type_traits>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/optim/optimizer.hpp"

namespace cpc {

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight
/// decay, exactly as torch.optim.SGD (maximize=False) updates one parameter group:
///   d = grad + weight_decay * p
///   b = d on the first step, else momentum b + (1 - dampening) d      (only when momentum != 0)
///   d = nesterov ? d + momentum b : b                                 (only when momentum != 0)
///   p -= lr d
/// State (only with momentum != 0): "sgd.momentum_buffer.<param name>", shaped like its parameter,
/// plus the step count `steps()` (the first step initialises the buffer). The element-wise update
/// runs over fixed chunks in parallel: results do not depend on the thread count.
/// Errors: `cpc::config_error` for options out of range or Nesterov without momentum or with
/// dampening (as torch's ValueError); `cpc::shape_error` when a gradient's shape differs from its
/// value's.
template <class T, class Backend = cpu>
class sgd : public optimizer_base<T, Backend> {
  CPC_REQUIRE_BACKEND(Backend);

  static_assert(std::is_floating_point_v<T>, "cpc::sgd: T must be float or double");

 public:
  /// Hyper-parameters with torch.optim.SGD's names and defaults.
  struct options {
    double learning_rate = 1e-3;
    double momentum = 0;
    double dampening = 0;
    bool nesterov = false;
    double weight_decay = 0;
  };

  /// Takes the parameters to update, e.g. `cpc::named_parameters<float>(model)`.
  sgd(named_parameter_list<T> params, options opt)
      : optimizer_base<T, Backend>("sgd", std::move(params), opt.learning_rate), opt_(opt) {
    if (!(opt.momentum >= 0))
      throw config_error("sgd: expected momentum >= 0, got " + std::to_string(opt.momentum));
    if (!(opt.weight_decay >= 0))
      throw config_error("sgd: expected weight_decay >= 0, got " + std::to_string(opt.weight_decay));
    if (opt.nesterov && (opt.momentum <= 0 || opt.dampening != 0))
      throw config_error("sgd: Nesterov momentum requires momentum > 0 and zero dampening");
    if (opt.momentum != 0) momentum_buffer_ = this->zero_state();
  }

  const options& config() const { return opt_; }

  /// One update of every parameter from its current gradient (gradients are not zeroed): one
  /// `ops::sgd_update` over the model's flat buffers, or one per parameter for other lists.
  /// Errors: `cpc::shape_error` when a parameter's value or gradient changed shape.
  void step() {
    this->check_parameters();
    const bool use_momentum = opt_.momentum != 0;
    ops::sgd_update_args<T> a{.lr = static_cast<T>(this->lr_),
                              .weight_decay = static_cast<T>(opt_.weight_decay),
                              .momentum = static_cast<T>(opt_.momentum),
                              .keep = static_cast<T>(1.0 - opt_.dampening),
                              .decay = opt_.weight_decay != 0,
                              .first = this->steps_ == 0,
                              .nesterov = opt_.nesterov};
    this->for_each_run([&](T* value, T* grad, std::size_t offset, std::size_t n) {
      a.n = n;
      a.value = value;
      a.grad = grad;
      a.momentum_buffer = use_momentum ? momentum_buffer_.data() + offset : nullptr;
      ops::sgd_update<Backend>(a);
    });
    ++this->steps_;
  }

  /// Visits the state as `f(name, view)` (`cpc::array_view<T>`, shaped like the parameter):
  /// "sgd.momentum_buffer.<param>" for each parameter when momentum != 0, nothing otherwise.
  /// Writing through the view restores state; restore the step count with `set_steps`.
  template <class F>
  void for_each_state(F&& f) {
    if (opt_.momentum == 0) return;
    for (std::size_t k = 0; k < this->params_.size(); ++k) {
      auto v = this->state_view(momentum_buffer_, k);
      f("sgd.momentum_buffer." + this->params_[k].first, v);
    }
  }
  /// Read-only visit, `f(name, const view&)`, for saving.
  template <class F>
  void for_each_state(F&& f) const {
    const_cast<sgd&>(*this).for_each_state(
        [&](const std::string& name, const array_view<T>& v) { f(name, v); });
  }

 private:
  options opt_;
  buffer_for<T, Backend> momentum_buffer_;  // laid out like the parameters; empty without momentum
};

}  // namespace cpc
