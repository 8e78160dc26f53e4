#pragma once
#include <string>
#include <type_traits>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/optim/optimizer.hpp"

namespace cpc {

/// RMSprop (Hinton's lecture 6e; the optimiser of the paper's reinforcement-learning experiments,
/// section 3.4, after Mnih et al. 2016) exactly as torch.optim.RMSprop (maximize=False) updates one
/// parameter group:
///   g = grad + weight_decay * p
///   s = alpha s + (1 - alpha) g^2
///   d = sqrt(s - a^2) + eps with a = alpha a + (1 - alpha) g  (centered), else d = sqrt(s) + eps
///   b = momentum b + g / d, p -= lr b  (momentum > 0), else p -= lr g / d
/// State: "rmsprop.square_avg.<param name>", plus "rmsprop.momentum_buffer.<param name>" when
/// momentum > 0 and "rmsprop.grad_avg.<param name>" when centered, each shaped like its parameter,
/// plus the step count `steps()`. The element-wise update runs over fixed chunks in parallel, so
/// results do not depend on the thread count.
/// Errors: `cpc::config_error` for options out of range (as torch's ValueError); `cpc::shape_error`
/// when a gradient's shape differs from its value's.
template <class T, class Backend = cpu>
class rmsprop : public optimizer_base<T, Backend> {
  CPC_REQUIRE_BACKEND(Backend);

  static_assert(std::is_floating_point_v<T>, "cpc::rmsprop: T must be float or double");

 public:
  /// Hyper-parameters with torch.optim.RMSprop's names and defaults.
  struct options {
    double learning_rate = 1e-2;
    double alpha = 0.99;
    double eps = 1e-8;
    double weight_decay = 0;
    double momentum = 0;
    bool centered = false;
  };

  /// Takes the parameters to update, e.g. `cpc::named_parameters<float>(model)`; zero state.
  rmsprop(named_parameter_list<T> params, options opt)
      : optimizer_base<T, Backend>("rmsprop", std::move(params), opt.learning_rate), opt_(opt) {
    if (!(opt.alpha >= 0 && opt.alpha <= 1))
      throw config_error("rmsprop: expected 0 <= alpha <= 1, got " + std::to_string(opt.alpha));
    if (!(opt.eps >= 0)) throw config_error("rmsprop: expected eps >= 0, got " + std::to_string(opt.eps));
    if (!(opt.momentum >= 0))
      throw config_error("rmsprop: expected momentum >= 0, got " + std::to_string(opt.momentum));
    if (!(opt.weight_decay >= 0))
      throw config_error("rmsprop: expected weight_decay >= 0, got " + std::to_string(opt.weight_decay));
    square_avg_ = this->zero_state();
    if (opt.momentum > 0) momentum_buffer_ = this->zero_state();
    if (opt.centered) grad_avg_ = this->zero_state();
  }

  const options& config() const { return opt_; }

  /// One update of every parameter from its current gradient (gradients are not zeroed): one
  /// `ops::rmsprop_update` over the model's flat buffers, or one per parameter for other lists.
  /// Errors: `cpc::shape_error` when a parameter's value or gradient changed shape.
  void step() {
    this->check_parameters();
    ops::rmsprop_update_args<T> a{.lr = static_cast<T>(this->lr_),
                                  .alpha = static_cast<T>(opt_.alpha),
                                  .one_minus_alpha = static_cast<T>(1.0 - opt_.alpha),
                                  .eps = static_cast<T>(opt_.eps),
                                  .weight_decay = static_cast<T>(opt_.weight_decay),
                                  .momentum = static_cast<T>(opt_.momentum),
                                  .decay = opt_.weight_decay != 0};
    this->for_each_run([&](T* value, T* grad, std::size_t offset, std::size_t n) {
      a.n = n;
      a.value = value;
      a.grad = grad;
      a.square_avg = square_avg_.data() + offset;
      a.grad_avg = opt_.centered ? grad_avg_.data() + offset : nullptr;
      a.momentum_buffer = opt_.momentum > 0 ? momentum_buffer_.data() + offset : nullptr;
      ops::rmsprop_update<Backend>(a);
    });
    ++this->steps_;
  }

  /// Visits the state as `f(name, view)` (`cpc::array_view<T>`, shaped like the parameter):
  /// "rmsprop.square_avg.<param>" for each parameter, then "rmsprop.momentum_buffer.<param>" (when
  /// momentum > 0), then "rmsprop.grad_avg.<param>" (when centered). Writing through the view
  /// restores state; restore the step count with `set_steps`.
  template <class F>
  void for_each_state(F&& f) {
    visit(square_avg_, "rmsprop.square_avg.", f);
    if (opt_.momentum > 0) visit(momentum_buffer_, "rmsprop.momentum_buffer.", f);
    if (opt_.centered) visit(grad_avg_, "rmsprop.grad_avg.", f);
  }
  /// Read-only visit, `f(name, const view&)`, for saving.
  template <class F>
  void for_each_state(F&& f) const {
    const_cast<rmsprop&>(*this).for_each_state(
        [&](const std::string& name, const array_view<T>& v) { f(name, v); });
  }

 private:
  template <class F>
  void visit(buffer_for<T, Backend>& s, const std::string& prefix, F& f) {
    for (std::size_t k = 0; k < this->params_.size(); ++k) {
      auto v = this->state_view(s, k);
      f(prefix + this->params_[k].first, v);
    }
  }

  options opt_;
  buffer_for<T, Backend> square_avg_;       // laid out like the parameters (optimizer_base)
  buffer_for<T, Backend> momentum_buffer_;  // empty without momentum
  buffer_for<T, Backend> grad_avg_;         // empty unless centered
};

}  // namespace cpc
