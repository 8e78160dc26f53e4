#pragma once
#include <cmath>
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
template <class T>
class adam : public optimizer_base<T> {
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
      : optimizer_base<T>("adam", std::move(params), opt.learning_rate), opt_(opt) {
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

  /// One update of every parameter from its current gradient (gradients are not zeroed).
  void step() {
    this->check_parameters();
    this->check_state(exp_avg_, "adam.exp_avg");
    this->check_state(exp_avg_sq_, "adam.exp_avg_sq");
    const std::uint64_t t = this->steps_ + 1;
    const double bias_correction1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(t));
    const double bias_correction2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(t));
    const T step_size = static_cast<T>(this->lr_ / bias_correction1);
    const T bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
    const T b1 = static_cast<T>(opt_.beta1), b2 = static_cast<T>(opt_.beta2);
    const T one_minus_b1 = static_cast<T>(1.0 - opt_.beta1), one_minus_b2 = static_cast<T>(1.0 - opt_.beta2);
    const T eps = static_cast<T>(opt_.eps), wd = static_cast<T>(opt_.weight_decay);
    const bool decay = opt_.weight_decay != 0;
    this->for_each_chunk([&](std::size_t k, std::size_t begin, std::size_t count) {
      T* p = this->params_[k].second->value.data() + begin;
      const T* grad = this->params_[k].second->grad.data() + begin;
      T* m = exp_avg_[k].data() + begin;
      T* v = exp_avg_sq_[k].data() + begin;
      for (std::size_t i = 0; i < count; ++i) {
        const T g = decay ? grad[i] + wd * p[i] : grad[i];
        m[i] = m[i] * b1 + g * one_minus_b1;
        v[i] = v[i] * b2 + one_minus_b2 * g * g;
        p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
      }
    });
    this->steps_ = t;
  }

  /// Visits the state tensors as `f(name, array<T>&)`: "adam.exp_avg.<param>" then
  /// "adam.exp_avg_sq.<param>" for each parameter in order. Writing through the reference restores
  /// state (keep the shape); restore the step count with `set_steps`.
  template <class F>
  void for_each_state(F&& f) {
    for (std::size_t k = 0; k < this->params_.size(); ++k)
      f("adam.exp_avg." + this->params_[k].first, exp_avg_[k]);
    for (std::size_t k = 0; k < this->params_.size(); ++k)
      f("adam.exp_avg_sq." + this->params_[k].first, exp_avg_sq_[k]);
  }
  /// Read-only visit, `f(name, const array<T>&)`, for saving.
  template <class F>
  void for_each_state(F&& f) const {
    for (std::size_t k = 0; k < this->params_.size(); ++k)
      f("adam.exp_avg." + this->params_[k].first, static_cast<const array<T>&>(exp_avg_[k]));
    for (std::size_t k = 0; k < this->params_.size(); ++k)
      f("adam.exp_avg_sq." + this->params_[k].first, static_cast<const array<T>&>(exp_avg_sq_[k]));
  }

 private:
  options opt_;
  std::vector<array<T>> exp_avg_;
  std::vector<array<T>> exp_avg_sq_;
};

}  // namespace cpc
