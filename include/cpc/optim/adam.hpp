#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/optim/optimizer.hpp"

namespace cpc {

/// Adam (Kingma & Ba 2015, Algorithm 1) with L2 weight decay added to the gradient, exactly as
/// torch.optim.Adam (amsgrad=False, maximize=False) updates one parameter group:
///   g = grad + weight_decay * p
///   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
///   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),   t = steps() after increment.
/// The paper's CPC setting is the default learning rate 2e-4 (REFERENCE.md).
/// State: "adam.exp_avg.<param name>" and "adam.exp_avg_sq.<param name>", each shaped like its
/// parameter, plus the step count `steps()`. The element-wise update runs over fixed chunks in
/// parallel, so results do not depend on the thread count.
/// Errors: `cpc::config_error` for options out of range (as torch's ValueError); `cpc::shape_error`
/// when a gradient's shape differs from its value's.
template <class T, class Backend = cpu>
class adam : public optimizer_base<T, Backend> {
  CPC_REQUIRE_BACKEND(Backend);

  static_assert(std::is_floating_point_v<T>, "cpc::adam: T must be float or double");

 public:
  /// Hyper-parameters, torch.optim.Adam's names and defaults except the learning rate (2e-4, the
  /// paper's value).
  struct options {
    double learning_rate = 2e-4;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;
  };

  /// Takes the parameters to update, e.g. `cpc::named_parameters<float>(model)`; zero state.
  adam(named_parameter_list<T> params, options opt)
      : optimizer_base<T, Backend>("adam", std::move(params), opt.learning_rate), opt_(opt) {
    if (!(opt.beta1 >= 0 && opt.beta1 < 1))
      throw config_error("adam: expected 0 <= beta1 < 1, got " + std::to_string(opt.beta1));
    if (!(opt.beta2 >= 0 && opt.beta2 < 1))
      throw config_error("adam: expected 0 <= beta2 < 1, got " + std::to_string(opt.beta2));
    if (!(opt.eps >= 0)) throw config_error("adam: expected eps >= 0, got " + std::to_string(opt.eps));
    if (!(opt.weight_decay >= 0))
      throw config_error("adam: expected weight_decay >= 0, got " + std::to_string(opt.weight_decay));
    exp_avg_ = this->zero_state();
    exp_avg_sq_ = this->zero_state();
  }

  const options& config() const { return opt_; }

  /// One update of every parameter from its current gradient (gradients are not zeroed): one
  /// `ops::adam_update` over the model's flat buffers, or one per parameter for other lists.
  /// Errors: `cpc::shape_error` when a parameter's value or gradient changed shape.
  void step() {
    this->check_parameters();
    const std::uint64_t t = this->steps_ + 1;
    const double bias_correction1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(t));
    const double bias_correction2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(t));
    ops::adam_update_args<T> a{.step_size = static_cast<T>(this->lr_ / bias_correction1),
                               .bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2)),
                               .beta1 = static_cast<T>(opt_.beta1),
                               .beta2 = static_cast<T>(opt_.beta2),
                               .one_minus_beta1 = static_cast<T>(1.0 - opt_.beta1),
                               .one_minus_beta2 = static_cast<T>(1.0 - opt_.beta2),
                               .eps = static_cast<T>(opt_.eps),
                               .weight_decay = static_cast<T>(opt_.weight_decay),
                               .decay = opt_.weight_decay != 0};
    this->for_each_run([&](T* value, T* grad, std::size_t offset, std::size_t n) {
      a.n = n;
      a.value = value;
      a.grad = grad;
      a.exp_avg = exp_avg_.data() + offset;
      a.exp_avg_sq = exp_avg_sq_.data() + offset;
      ops::adam_update<Backend>(a);
    });
    this->steps_ = t;
  }

  /// Visits the state as `f(name, view)` (`cpc::array_view<T>`, shaped like the parameter):
  /// "adam.exp_avg.<param>" then "adam.exp_avg_sq.<param>" for each parameter in order. Writing
  /// through the view restores state; restore the step count with `set_steps`.
  template <class F>
  void for_each_state(F&& f) {
    for (std::size_t k = 0; k < this->params_.size(); ++k) {
      auto v = this->state_view(exp_avg_, k);
      f("adam.exp_avg." + this->params_[k].first, v);
    }
    for (std::size_t k = 0; k < this->params_.size(); ++k) {
      auto v = this->state_view(exp_avg_sq_, k);
      f("adam.exp_avg_sq." + this->params_[k].first, v);
    }
  }
  /// Read-only visit, `f(name, const view&)`, for saving.
  template <class F>
  void for_each_state(F&& f) const {
    const_cast<adam&>(*this).for_each_state(
        [&](const std::string& name, const array_view<T>& v) { f(name, v); });
  }

 private:
  options opt_;
  buffer_for<T, Backend> exp_avg_;  // laid out like the parameters (optimizer_base)
  buffer_for<T, Backend> exp_avg_sq_;
};

}  // namespace cpc
