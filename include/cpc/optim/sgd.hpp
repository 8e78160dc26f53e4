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
template <class T>
class sgd : public optimizer_base<T> {
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
      : optimizer_base<T>("sgd", std::move(params), opt.learning_rate), opt_(opt) {
    if (!(opt.momentum >= 0))
      throw config_error("sgd: expected momentum >= 0, got " + std::to_string(opt.momentum));
    if (!(opt.weight_decay >= 0))
      throw config_error("sgd: expected weight_decay >= 0, got " + std::to_string(opt.weight_decay));
    if (opt.nesterov && (opt.momentum <= 0 || opt.dampening != 0))
      throw config_error("sgd: Nesterov momentum requires momentum > 0 and zero dampening");
    if (opt.momentum != 0) momentum_buffer_ = this->zero_state();
  }

  const options& config() const { return opt_; }

  /// One update of every parameter from its current gradient (gradients are not zeroed).
  void step() {
    this->check_parameters();
    const bool use_momentum = opt_.momentum != 0;
    if (use_momentum) this->check_state(momentum_buffer_, "sgd.momentum_buffer");
    const bool first = this->steps_ == 0;
    const bool decay = opt_.weight_decay != 0;
    const T lr = static_cast<T>(this->lr_), wd = static_cast<T>(opt_.weight_decay);
    const T mu = static_cast<T>(opt_.momentum), keep = static_cast<T>(1.0 - opt_.dampening);
    const bool nesterov = opt_.nesterov;
    this->for_each_chunk([&](std::size_t k, std::size_t begin, std::size_t count) {
      T* p = this->params_[k].second->value.data() + begin;
      const T* grad = this->params_[k].second->grad.data() + begin;
      if (!use_momentum) {
        for (std::size_t i = 0; i < count; ++i) p[i] -= lr * (decay ? grad[i] + wd * p[i] : grad[i]);
        return;
      }
      T* b = momentum_buffer_[k].data() + begin;
      for (std::size_t i = 0; i < count; ++i) {
        const T d = decay ? grad[i] + wd * p[i] : grad[i];
        b[i] = first ? d : mu * b[i] + keep * d;
        p[i] -= lr * (nesterov ? d + mu * b[i] : b[i]);
      }
    });
    ++this->steps_;
  }

  /// Visits the state tensors as `f(name, array<T>&)`: "sgd.momentum_buffer.<param>" for each
  /// parameter when momentum != 0, nothing otherwise. Writing through the reference restores state
  /// (keep the shape); restore the step count with `set_steps`.
  template <class F>
  void for_each_state(F&& f) {
    for (std::size_t k = 0; k < momentum_buffer_.size(); ++k)
      f("sgd.momentum_buffer." + this->params_[k].first, momentum_buffer_[k]);
  }
  /// Read-only visit, `f(name, const array<T>&)`, for saving.
  template <class F>
  void for_each_state(F&& f) const {
    for (std::size_t k = 0; k < momentum_buffer_.size(); ++k)
      f("sgd.momentum_buffer." + this->params_[k].first, static_cast<const array<T>&>(momentum_buffer_[k]));
  }

 private:
  options opt_;
  std::vector<array<T>> momentum_buffer_;
};

}  // namespace cpc
