#pragma once
/// The CPC model: encoder g_enc, autoregressor g_ar and a contrastive loss, composed at compile
/// time (van den Oord et al. 2018, section 2, Figure 1).
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "cpc/backend/tags.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/loss/info_nce.hpp"
#include "cpc/model/presets.hpp"

namespace cpc {

/// An encoder from audio `[batch, samples]` to latents `[batch, frames, channels]`.
template <class E, class T>
concept audio_encoder = requires(E e, const tensor2<T>& audio, tensor3<T>& z, const tensor3<T>& dz) {
  e.forward(audio, z);
  e.backward(dz);
  { e.frames(std::size_t{}) } -> std::convertible_to<std::size_t>;
};

/// A causal sequence model from latents `[batch, time, in]` to contexts `[batch, time, hidden]`,
/// with a state-carrying forward for streaming.
template <class A, class T>
concept autoregressor = requires(A a, const tensor3<T>& x, tensor3<T>& y, const tensor3<T>* h0,
                                 tensor3<T>* hn, const tensor3<T>& dy, tensor3<T>* dx) {
  a.forward(x, y);
  a.forward(x, y, h0, hn);
  a.backward(x, y, dy, dx);
};

/// A contrastive loss over latents z and contexts c that also returns their gradients.
template <class L, class T>
concept contrastive_loss = requires(L l, const tensor3<T>& z, const tensor3<T>& c, const batch_info& info,
                                    rng& gen, tensor3<T>* dz, tensor3<T>* dc) {
  { l.compute(z, c, info, gen, dz, dc) } -> std::same_as<info_nce_result>;
};

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

/// A CPC model. `Config` is a configuration type (see cpc::presets); `Encoder`, `Autoregressor`
/// and `Loss` are component templates `<T, Backend>`, e.g.
/// `cpc::model<cpc::presets::audio_paper, cpc::strided_conv_encoder, cpc::gru, cpc::info_nce>`.
/// Shapes: audio `[batch, samples]` (16 kHz), latents z `[batch, frames, latent]`, contexts c
/// `[batch, frames, context]`. Parameter names: "encoder.*", "autoregressor.*", "loss.*".
/// Errors: `cpc::config_error` when the components' sizes disagree (encoder channels vs
/// autoregressor input vs loss latent size; autoregressor hidden size vs loss context size);
/// components' own errors for wrong input shapes.
template <class Config, template <class, class> class Encoder, template <class, class> class Autoregressor,
          template <class, class> class Loss, class T = float, class Backend = cpu>
class model {
  CPC_REQUIRE_BACKEND(Backend);
  static_assert(std::is_floating_point_v<T>, "cpc::model: T must be float or double");

 public:
  using value_type = T;
  using config_type = Config;
  using encoder_type = Encoder<T, Backend>;
  using autoregressor_type = Autoregressor<T, Backend>;
  using loss_type = Loss<T, Backend>;

  static_assert(
      audio_encoder<encoder_type, T>,
      "cpc::model: Encoder must map audio [batch, samples] to latents [batch, frames, channels] - "
      "it needs forward(const tensor2<T>&, tensor3<T>&), backward(const tensor3<T>&) and frames(n)");
  static_assert(autoregressor<autoregressor_type, T>,
                "cpc::model: Autoregressor must be a causal sequence layer - it needs forward(x, y), "
                "forward(x, y, h0, h_n) and backward(x, y, dy, dx), like cpc::gru");
  static_assert(contrastive_loss<loss_type, T>,
                "cpc::model: Loss must provide compute(z, c, batch_info, rng&, dz*, dc*) -> info_nce_result, "
                "like cpc::info_nce");
  static_assert(configurable_by<encoder_type, Config> && configurable_by<autoregressor_type, Config> &&
                    configurable_by<loss_type, Config>,
                "cpc::model: Config gives no options for one of the components - define "
                "default_options(std::type_identity<Component>, Config) (see cpc/model/presets.hpp)");

  /// Every component's options (defaults from `Config`) and the seed of the model's generator,
  /// which draws the initial weights and then the negatives.
  struct options {
    typename encoder_type::options encoder = default_options(std::type_identity<encoder_type>{}, Config{});
    typename autoregressor_type::options autoregressor =
        default_options(std::type_identity<autoregressor_type>{}, Config{});
    typename loss_type::options loss = default_options(std::type_identity<loss_type>{}, Config{});
    std::uint64_t seed = 0;
  };

  /// Builds encoder, autoregressor and loss in that order from one generator seeded with `opt.seed`.
  explicit model(options opt = {})
      : opt_(check(opt)),
        gen_(opt.seed),
        encoder_(opt.encoder, gen_),
        ar_(opt.autoregressor, gen_),
        loss_(opt.loss, gen_) {}

  const options& config() const { return opt_; }

  /// Frames produced for `samples` audio samples (128 for 20480 with the paper's encoder).
  std::size_t frames(std::size_t samples) const { return encoder_.frames(samples); }

  /// Latents and contexts of `audio`, for probes and downstream use. Shapes: audio `[B, samples]`,
  /// z `[B, frames, latent]`, c `[B, frames, context]` (resized; buffers are reused).
  void encode(const tensor2<T>& audio, tensor3<T>& z, tensor3<T>& c) {
    encoder_.forward(audio, z);
    ar_.forward(z, c);
  }

  /// Contexts from latents with a carried autoregressor state, for streaming: feeding a latent
  /// sequence in chunks, passing the same `state` each time (empty at the start), gives the same
  /// contexts as one pass. Shapes: z `[B, t, latent]` -> c `[B, t, context]`; state
  /// `[layers, B, context]` (GRU) - or as the autoregressor defines it.
  void contexts(const tensor3<T>& z, tensor3<T>& c, tensor3<T>& state) {
    if (state.size() == 0) {
      ar_.forward(z, c, nullptr, &state);
    } else {
      carry_ = state;
      ar_.forward(z, c, &carry_, &state);
    }
  }

  /// Loss, per-step accuracies and gradients for one batch: zeroes every gradient, runs the
  /// forward pass, the loss (negatives drawn from the model's generator) and the backward pass.
  /// Parameters' `grad` then hold d loss / d parameter. Shapes: audio `[B, samples]`; `info`
  /// lengths in frames and speaker ids per item (see batch_info).
  /// Errors: `cpc::shape_error` for an empty batch (B = 0) or too few samples for one frame;
  /// the loss's `cpc::config_error` when no item has 2 valid frames.
  info_nce_result compute_gradients(const tensor2<T>& audio, const batch_info& info = {}) {
    check_not_empty(audio);
    zero_grad<T>(*this);
    encoder_.forward(audio, z_);
    ar_.forward(z_, c_);
    info_nce_result r = loss_.compute(z_, c_, info, gen_, &dz_, &dc_);
    ar_.backward(z_, c_, dc_, &dz_ar_);
    dz_ += dz_ar_;
    encoder_.backward(dz_);
    return r;
  }

  /// Loss and accuracies without gradients (evaluation). Shapes and errors as `compute_gradients`.
  info_nce_result evaluate(const tensor2<T>& audio, const batch_info& info = {}) {
    check_not_empty(audio);
    encode(audio, z_, c_);
    return loss_.compute(z_, c_, info, gen_, nullptr, nullptr);
  }

  /// `compute_gradients` then one optimiser step. `Optimizer` has `step()` (cpc::adam, cpc::sgd).
  template <class Optimizer>
  info_nce_result train_step(const tensor2<T>& audio, Optimizer& opt, const batch_info& info = {}) {
    info_nce_result r = compute_gradients(audio, info);
    opt.step();
    return r;
  }

  /// Visits every parameter as f(name, parameter<T>&): "encoder.*", then "autoregressor.*",
  /// then "loss.*" (names below each prefix are the component's own, PyTorch-style).
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    encoder_.for_each_parameter(f, join_name(prefix, "encoder"));
    ar_.for_each_parameter(f, join_name(prefix, "autoregressor"));
    loss_.for_each_parameter(f, join_name(prefix, "loss"));
  }

  /// All parameters with their names, for optimisers: `cpc::adam<float> opt{m.parameters(), {}}`.
  std::vector<std::pair<std::string, parameter<T>*>> parameters() { return named_parameters<T>(*this); }

  /// Total number of learnable scalars.
  std::size_t parameter_count() { return cpc::parameter_count<T>(*this); }

  /// The generator that draws negatives (saved in checkpoints).
  rng& generator() { return gen_; }
  encoder_type& encoder() { return encoder_; }
  autoregressor_type& autoregressor() { return ar_; }
  loss_type& loss() { return loss_; }

 private:
  static void check_not_empty(const tensor2<T>& audio) {
    if (audio.shape()[0] == 0)
      throw shape_error("cpc::model: expected a non-empty batch [>= 1, samples], got " +
                        shape_string(audio.shape()));
  }
  static const options& check(const options& o) { return check_component_sizes("cpc::model", o); }

  options opt_;
  rng gen_;
  encoder_type encoder_;
  autoregressor_type ar_;
  loss_type loss_;
  tensor3<T> z_, c_, dz_, dc_, dz_ar_, carry_;  // reused across steps
};

/// The paper's audio model in float: strided convolutions, GRU, InfoNCE.
template <class Config = presets::audio_paper, class T = float>
using audio_model = model<Config, strided_conv_encoder, gru, info_nce, T>;

}  // namespace cpc
