#pragma once
/// The CPC model: encoder g_enc, autoregressor g_ar and a contrastive loss, composed at compile
/// time (van den Oord et al. 2018, section 2, Figure 1).
#include <concepts>
#include <string>
#include <type_traits>

#include "cpc/backend/tags.hpp"
#include "cpc/core/batch.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/loss/info_nce.hpp"
#include "cpc/model/model_core.hpp"
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
class model : public detail::model_core<Config, Encoder<T, Backend>, Autoregressor<T, Backend>,
                                        Loss<T, Backend>, T, tensor3<T>, Backend> {
  CPC_REQUIRE_BACKEND(Backend);
  static_assert(std::is_floating_point_v<T>, "cpc::model: T must be float or double");
  using core = typename model::model_core;

 public:
  using typename core::options;
  /// The batch `compute_gradients`, `evaluate`, `train_step` and `cpc::train` take (what
  /// `cpc::window_sampler` yields).
  using batch_type = audio_batch<T>;

  static_assert(
      audio_encoder<Encoder<T, Backend>, T>,
      "cpc::model: Encoder must map audio [batch, samples] to latents [batch, frames, channels] - "
      "it needs forward(const tensor2<T>&, tensor3<T>&), backward(const tensor3<T>&) and frames(n)");
  static_assert(autoregressor<Autoregressor<T, Backend>, T>,
                "cpc::model: Autoregressor must be a causal sequence layer - it needs forward(x, y), "
                "forward(x, y, h0, h_n) and backward(x, y, dy, dx), like cpc::gru");
  static_assert(contrastive_loss<Loss<T, Backend>, T>,
                "cpc::model: Loss must provide compute(z, c, batch_info, rng&, dz*, dc*) -> info_nce_result, "
                "like cpc::info_nce");
  static_assert(configurable_by<Encoder<T, Backend>, Config> &&
                    configurable_by<Autoregressor<T, Backend>, Config> &&
                    configurable_by<Loss<T, Backend>, Config>,
                "cpc::model: Config gives no options for one of the components - define "
                "default_options(std::type_identity<Component>, Config) (see cpc/model/presets.hpp)");

  /// Builds encoder, autoregressor and loss in that order from one generator seeded with `opt.seed`.
  explicit model(options opt = {}) : core(opt, "cpc::model", "samples") {}

  /// Frames produced for `samples` audio samples (128 for 20480 with the paper's encoder).
  std::size_t frames(std::size_t samples) const { return this->encoder().frames(samples); }

  /// Latents and contexts of `audio`, for probes and downstream use. Shapes: audio `[B, samples]`,
  /// z `[B, frames, latent]`, c `[B, frames, context]` (resized; buffers are reused).
  void encode(const tensor2<T>& audio, tensor3<T>& z, tensor3<T>& c) { this->forward(audio, z, c); }

  /// Contexts from latents with a carried autoregressor state, for streaming: feeding a latent
  /// sequence in chunks, passing the same `state` each time (empty at the start), gives the same
  /// contexts as one pass. Shapes: z `[B, t, latent]` -> c `[B, t, context]`; state
  /// `[layers, B, context]` (GRU) - or as the autoregressor defines it.
  void contexts(const tensor3<T>& z, tensor3<T>& c, tensor3<T>& state) {
    if (state.size() == 0) {
      this->autoregressor().forward(z, c, nullptr, &state);
    } else {
      carry_ = state;
      this->autoregressor().forward(z, c, &carry_, &state);
    }
  }

  /// Loss, per-step accuracies and gradients for one batch: zeroes every gradient, runs the
  /// forward pass, the loss (negatives drawn from the model's generator) and the backward pass.
  /// Parameters' `grad` then hold d loss / d parameter. Shapes: audio `[B, samples]`; `info`
  /// lengths in frames and speaker ids per item (see batch_info).
  /// Errors: `cpc::shape_error` for an empty batch (B = 0) or too few samples for one frame;
  /// the loss's `cpc::config_error` when no item has 2 valid frames.
  info_nce_result compute_gradients(const tensor2<T>& audio, const batch_info& info = {}) {
    return this->gradients(audio, info);
  }

  /// `compute_gradients(batch.audio, batch.info)`: the batch's lengths (frames) and speaker ids
  /// reach the loss; its labels and positions are not used.
  info_nce_result compute_gradients(const batch_type& batch) {
    return compute_gradients(batch.audio, batch.info);
  }

  /// Loss and accuracies without gradients (evaluation). Shapes and errors as `compute_gradients`.
  info_nce_result evaluate(const tensor2<T>& audio, const batch_info& info = {}) {
    return this->loss_without_gradients(audio, info);
  }
  /// `evaluate(batch.audio, batch.info)`.
  info_nce_result evaluate(const batch_type& batch) { return evaluate(batch.audio, batch.info); }

  /// `compute_gradients` then one optimiser step. `Optimizer` has `step()` (cpc::adam, cpc::sgd).
  template <class Optimizer>
  info_nce_result train_step(const tensor2<T>& audio, Optimizer& opt, const batch_info& info = {}) {
    return core::step(opt, compute_gradients(audio, info));
  }
  /// `train_step(batch.audio, opt, batch.info)`.
  template <class Optimizer>
  info_nce_result train_step(const batch_type& batch, Optimizer& opt) {
    return core::step(opt, compute_gradients(batch));
  }

 private:
  tensor3<T> carry_;  // the streaming state's copy, reused across calls
};

/// The paper's audio model in float: strided convolutions, GRU, InfoNCE.
template <class Config = presets::audio_paper, class T = float>
using audio_model = model<Config, strided_conv_encoder, gru, info_nce, T>;

}  // namespace cpc
