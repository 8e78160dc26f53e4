#pragma once
/// The CPC text model (van den Oord et al. 2018, section 3.3): a sentence encoder (embedding, 1-D
/// convolution, ReLU, mean pooling), a GRU over the sequence of sentence latents, and InfoNCE
/// predicting up to K = 3 sentences ahead with negatives from the batch, composed at compile time
/// on the model core the audio and image models share.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "cpc/backend/tags.hpp"
#include "cpc/core/batch.hpp"
#include "cpc/core/batch_info.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/encoder/sentence_encoder.hpp"
#include "cpc/layers/gru.hpp"
#include "cpc/loss/info_nce.hpp"
#include "cpc/model/model.hpp"
#include "cpc/model/model_core.hpp"
#include "cpc/model/presets.hpp"

namespace cpc {

namespace presets {
/// The text model at this project's scale (2 CPU cores, ~10 minutes of training): SentencePiece
/// vocabulary of 4000 pieces (id 0 = padding), 128-d embeddings, kernel-3 convolution to 512
/// latent channels (the paper: 2400), a 1-layer GRU with 256 units, K = 3 sentences ahead, N = 64
/// negatives from the whole batch.
struct text_small {
  static constexpr std::size_t vocabulary = 4000;
  static constexpr std::size_t embedding_dim = 128;
  static constexpr std::size_t latent_channels = 512;
  static constexpr std::size_t kernel = 3;
  static constexpr std::size_t context_channels = 256;
  static constexpr std::size_t autoregressor_layers = 1;
  static constexpr std::size_t prediction_steps = 3;
  static constexpr std::size_t negatives = 64;
};

/// A tiny text model for tests: vocabulary 50, 8-d embeddings, 16 latent and 8 context channels,
/// K = 2, N = 4.
struct text_tiny : text_small {
  static constexpr std::size_t vocabulary = 50;
  static constexpr std::size_t embedding_dim = 8;
  static constexpr std::size_t latent_channels = 16;
  static constexpr std::size_t context_channels = 8;
  static constexpr std::size_t prediction_steps = 2;
  static constexpr std::size_t negatives = 4;
};
}  // namespace presets

/// Sentence encoder options from a text configuration (one with `vocabulary`).
template <class T, class Backend, class Config>
requires requires {
  Config::vocabulary;
}
sentence_encoder_options default_options(std::type_identity<sentence_encoder<T, Backend>>, Config) {
  return {.vocabulary = Config::vocabulary,
          .embedding_dim = Config::embedding_dim,
          .channels = Config::latent_channels,
          .kernel = Config::kernel,
          .padding_id = 0};
}

/// An encoder from token ids `[batch, sentences, tokens]` to sentence latents `[batch, sentences, D]`.
template <class E, class T>
concept text_encoder = requires(E e, const tensor3<std::int32_t>& ids, tensor3<T>& z, const tensor3<T>& dz) {
  e.forward(ids, z);
  e.backward(dz);
};

/// A CPC text model, e.g. `cpc::text_model<cpc::presets::text_small, cpc::sentence_encoder, cpc::gru,
/// cpc::info_nce>`. Shapes: token ids `[batch, sentences, tokens]` (int32, padded with id 0),
/// latents z `[batch, sentences, latent]`, contexts c `[batch, sentences, context]`; `batch_info`
/// lengths count real sentences per row. Parameter names: "encoder.*", "autoregressor.*", "loss.*".
/// Errors: `cpc::config_error` when the components' sizes disagree or no row has 2 real sentences;
/// `cpc::shape_error` for an empty batch or an id outside the vocabulary.
template <class Config, template <class, class> class Encoder, template <class, class> class Autoregressor,
          template <class, class> class Loss, class T = float, class Backend = cpu>
class text_model : public detail::model_core<Config, Encoder<T, Backend>, Autoregressor<T, Backend>,
                                             Loss<T, Backend>, T, tensor3<T>, Backend> {
  CPC_REQUIRE_BACKEND(Backend);
  static_assert(std::is_floating_point_v<T>, "cpc::text_model: T must be float or double");
  using core = typename text_model::model_core;

 public:
  using typename core::options;
  /// The batch `compute_gradients`, `evaluate`, `train_step` and `cpc::train` take (what
  /// `cpc::text_sampler` yields).
  using batch_type = text_batch;

  static_assert(
      text_encoder<Encoder<T, Backend>, T>,
      "cpc::text_model: Encoder must map token ids [batch, sentences, tokens] to latents - it needs "
      "forward(const tensor3<int32_t>&, tensor3<T>&) and backward(const tensor3<T>&), like "
      "sentence_encoder");
  static_assert(autoregressor<Autoregressor<T, Backend>, T>,
                "cpc::text_model: Autoregressor must be a causal sequence layer, like cpc::gru");
  static_assert(
      contrastive_loss<Loss<T, Backend>, T>,
      "cpc::text_model: Loss must provide compute(z, c, batch_info, rng&, dz*, dc*), like cpc::info_nce");

  /// Builds encoder, autoregressor and loss in that order from one generator seeded with `opt.seed`.
  explicit text_model(options opt = {}) : core(opt, "cpc::text_model", "sentences, tokens") {}

  /// Sentence latents and contexts of `ids` (buffers resized and reused).
  void encode(const tensor3<std::int32_t>& ids, tensor3<T>& z, tensor3<T>& c) { this->forward(ids, z, c); }

  /// Sentence latents only (the probe features: the sentence encoder's output, as the paper's).
  void encode_latents(const tensor3<std::int32_t>& ids, tensor3<T>& z) { this->encoder().forward(ids, z); }

  /// Zeroes every gradient, runs forward, the loss (negatives from the model's generator) and
  /// backward. `info.lengths`: real sentences per row.
  info_nce_result compute_gradients(const tensor3<std::int32_t>& ids, const batch_info& info = {}) {
    return this->gradients(ids, info);
  }
  /// `compute_gradients(batch.ids, batch.info)`.
  info_nce_result compute_gradients(const batch_type& batch) {
    return compute_gradients(batch.ids, batch.info);
  }

  /// Loss and accuracies without gradients.
  info_nce_result evaluate(const tensor3<std::int32_t>& ids, const batch_info& info = {}) {
    return this->loss_without_gradients(ids, info);
  }
  /// `evaluate(batch.ids, batch.info)`.
  info_nce_result evaluate(const batch_type& batch) { return evaluate(batch.ids, batch.info); }

  /// `compute_gradients` then one optimiser step.
  template <class Optimizer>
  info_nce_result train_step(const batch_type& batch, Optimizer& opt) {
    return core::step(opt, compute_gradients(batch));
  }
};

/// The text model in float: sentence encoder, GRU, InfoNCE (paper section 3.3).
template <class Config = presets::text_small, class T = float>
using cpc_text_model = text_model<Config, sentence_encoder, gru, info_nce, T>;

}  // namespace cpc
