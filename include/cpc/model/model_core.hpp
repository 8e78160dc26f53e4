#pragma once
/// What cpc::model and cpc::image_model share: options from a configuration, components built from
/// one generator, the CPC training pass (van den Oord et al. 2018, section 2), parameter visiting.
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/backend/parameter_store.hpp"
#include "cpc/core/cpu_features.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/loss_result.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"

namespace cpc {

/// Whether `default_options(std::type_identity<Component>, Config)` exists.
template <class Component, class Config>
concept configurable_by = requires {
  default_options(std::type_identity<Component>{}, Config{});
};

/// Checks that composed components agree on their sizes: encoder channels = autoregressor
/// input size = loss latent size, and autoregressor hidden size = loss context size (for the
/// components that have these options). Returns `o`.
/// Errors: `cpc::config_error` "<who>: ... must be equal" naming the sizes.
template <class Options>
const Options& check_component_sizes(std::string_view who, const Options& o) {
  if constexpr (requires {
                  o.encoder.channels;
                  o.autoregressor.input_size;
                  o.loss.latent_dim;
                }) {
    if (o.encoder.channels != o.autoregressor.input_size || o.encoder.channels != o.loss.latent_dim)
      throw config_error(std::string(who) + ": encoder channels (" + std::to_string(o.encoder.channels) +
                         "), autoregressor input size (" + std::to_string(o.autoregressor.input_size) +
                         ") and loss latent_dim (" + std::to_string(o.loss.latent_dim) + ") must be equal");
  }
  if constexpr (requires {
                  o.autoregressor.hidden_size;
                  o.loss.context_dim;
                }) {
    if (o.autoregressor.hidden_size != o.loss.context_dim)
      throw config_error(std::string(who) + ": autoregressor hidden size (" +
                         std::to_string(o.autoregressor.hidden_size) + ") and loss context_dim (" +
                         std::to_string(o.loss.context_dim) + ") must be equal");
  }
  return o;
}

namespace detail {

/// The modality-independent part of cpc::model and cpc::image_model. `Latents` is the type of z, c
/// and their gradients (`tensor3<T>` for audio, `tensor4<T>` for image grids); the derived class
/// gives the typed entry points and the loss's extra arguments (audio: a `batch_info`; grids: none).
/// The model owns its parameters' flat value and gradient buffers (`parameter_store`), so it can
/// be neither copied nor moved: an optimiser holding `parameters()` could otherwise point at freed
/// memory.
template <class Config, class Encoder, class Autoregressor, class Loss, class T, class Latents, class Backend>
class model_core {
 public:
  model_core(const model_core&) = delete;
  model_core& operator=(const model_core&) = delete;
  model_core(model_core&&) = delete;
  model_core& operator=(model_core&&) = delete;

  using value_type = T;
  using config_type = Config;
  using encoder_type = Encoder;
  using autoregressor_type = Autoregressor;
  using loss_type = Loss;
  using backend_type = Backend;

  /// Every component's options (defaults from `Config`) and the seed of the model's generator,
  /// which draws the initial weights and then the negatives.
  struct options {
    typename encoder_type::options encoder = default_options(std::type_identity<encoder_type>{}, Config{});
    typename autoregressor_type::options autoregressor =
        default_options(std::type_identity<autoregressor_type>{}, Config{});
    typename loss_type::options loss = default_options(std::type_identity<loss_type>{}, Config{});
    std::uint64_t seed = 0;
  };

  const options& config() const { return opt_; }

  /// Visits every parameter as f(name, parameter<T>&): "encoder.*", then "autoregressor.*",
  /// then "loss.*" (names below each prefix are the component's own, PyTorch-style).
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    encoder_.for_each_parameter(f, join_name(prefix, "encoder"));
    ar_.for_each_parameter(f, join_name(prefix, "autoregressor"));
    loss_.for_each_parameter(f, join_name(prefix, "loss"));
  }

  /// All parameters with their names, for optimisers: `cpc::adam<float> opt{m.parameters(), {}}`.
  /// They are the slots of the model's flat buffers (`flat` is set), so optimisers update the
  /// whole model in one pass.
  const named_parameter_list<T>& parameters() const { return store_.parameters(); }

  /// Total number of learnable scalars.
  std::size_t parameter_count() { return cpc::parameter_count<T>(*this); }

  /// The generator that draws negatives (saved in checkpoints).
  rng& generator() { return gen_; }
  encoder_type& encoder() { return encoder_; }
  const encoder_type& encoder() const { return encoder_; }
  autoregressor_type& autoregressor() { return ar_; }
  loss_type& loss() { return loss_; }

 protected:
  /// Builds encoder, autoregressor and loss in that order from one generator seeded with `opt.seed`.
  /// `who` names the model and `input_dims` the input's dimensions after the batch (e.g. "samples")
  /// in error messages (both string literals).
  /// Errors: `cpc::config_error` naming `who` when the components' sizes disagree.
  model_core(const options& opt, std::string_view who, std::string_view input_dims)
      : who_(who),
        input_dims_(input_dims),
        opt_(check_component_sizes(who, opt)),
        gen_(opt.seed),
        encoder_(opt.encoder, gen_),
        ar_(opt.autoregressor, gen_),
        loss_(opt.loss, gen_),
        store_(*this) {
    warn_if_cpu_features_unused();
  }

  /// Latents and contexts of `x` (resized; buffers are reused).
  template <class Input>
  void forward(const Input& x, Latents& z, Latents& c) {
    encoder_.forward(x, z);
    ar_.forward(z, c);
  }

  /// Zeroes every gradient, runs forward, the loss `compute(z, c, loss_args..., generator, &dz,
  /// &dc)` and backward (dz from the loss plus dz through the autoregressor).
  /// Errors: `cpc::shape_error` "<who>: expected a non-empty batch" for B = 0 (before any change).
  template <class Input, class... LossArgs>
  info_nce_result gradients(const Input& x, const LossArgs&... loss_args) {
    check_not_empty(x);
    ops::fill<Backend>(ops::fill_args<T>{.n = store_.size(), .value = T(0), .y = store_.grads()});
    forward(x, z_, c_);
    info_nce_result r = loss_.compute(z_, c_, loss_args..., gen_, &dz_, &dc_);
    ar_.backward(z_, c_, dc_, &dz_ar_);
    ops::axpby<Backend>(ops::axpby_args<T>{
        .n = dz_.size(), .alpha = T(1), .x = dz_ar_.data(), .beta = T(1), .y = dz_.data()});
    encoder_.backward(dz_);
    return r;
  }

  /// Forward and loss without gradients.
  template <class Input, class... LossArgs>
  info_nce_result loss_without_gradients(const Input& x, const LossArgs&... loss_args) {
    check_not_empty(x);
    forward(x, z_, c_);
    return loss_.compute(z_, c_, loss_args..., gen_, nullptr, nullptr);
  }

  /// `opt.step()`, then `r` (the result of the gradients the step used).
  template <class Optimizer>
  static info_nce_result step(Optimizer& opt, info_nce_result r) {
    opt.step();
    return r;
  }

 private:
  template <class Input>
  void check_not_empty(const Input& x) const {
    if (x.shape()[0] == 0)
      throw shape_error(std::string(who_) + ": expected a non-empty batch [>= 1, " +
                        std::string(input_dims_) + "], got " + shape_string(x.shape()));
  }

  std::string_view who_, input_dims_;
  options opt_;
  rng gen_;
  encoder_type encoder_;
  autoregressor_type ar_;
  loss_type loss_;
  parameter_store<T, Backend> store_;  // after the components: binds their parameters
  Latents z_, c_, dz_, dc_, dz_ar_;    // reused across steps
};

}  // namespace detail
}  // namespace cpc
