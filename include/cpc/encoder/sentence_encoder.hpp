#pragma once
/// The sentence encoder of CPC's text model (van den Oord et al. 2018, section 3.3): token
/// embedding, a 1-D convolution over the tokens, ReLU and mean pooling over time, one latent
/// vector per sentence.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/conv1d.hpp"
#include "cpc/layers/embedding.hpp"
#include "cpc/layers/masked_mean_pool.hpp"
#include "cpc/layers/relu.hpp"

namespace cpc {

/// Sizes of `cpc::sentence_encoder`. Defaults: the project's text preset (`presets::text_small`);
/// the paper's model has 2400 channels (section 3.3).
struct sentence_encoder_options {
  std::size_t vocabulary = 4000;  ///< token ids [0, vocabulary)
  std::size_t embedding_dim = 128;
  std::size_t channels = 512;   ///< latent width D (convolution output channels)
  std::size_t kernel = 3;       ///< odd: the convolution keeps the length (padding (kernel - 1) / 2)
  std::int32_t padding_id = 0;  ///< the token id that pads sentences (zero embedding)
};

/// z[b, s, :] = mean_{t < len} relu(conv1d(embedding(ids[b, s, :])))[t, :], len = the number of
/// tokens before the first padding id in sentence (b, s). The padding id's embedding is zero and the
/// convolution pads with zeros, so a sentence's latent does not depend on how much padding its
/// batch has. A sentence of length 0 (all padding: an empty slot of a shorter sequence) has z = 0.
/// Shapes: ids `[batch, sentences, tokens]` (int32) -> z `[batch, sentences, channels]`.
/// Parameters: "embedding.weight" `[vocabulary, embedding_dim]`, "conv.weight"
/// `[channels, embedding_dim, kernel]`, "conv.bias" `[channels]`.
/// Errors: `cpc::config_error` for zero sizes, an even kernel or a padding id outside the
/// vocabulary; `cpc::shape_error` for an id outside [0, vocabulary), an empty token axis or a
/// gradient of the wrong shape.
template <class T, class Backend = cpu>
class sentence_encoder {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Sizes (`cpc::sentence_encoder_options`).
  using options = sentence_encoder_options;

  /// Builds embedding then convolution, drawing their initial weights from `gen` in that order.
  sentence_encoder(options opt, rng& gen)
      : opt_(check(opt)),
        embed_({.vocabulary = opt.vocabulary, .dim = opt.embedding_dim, .padding = opt.padding_id}, gen),
        conv_({.in_channels = opt.embedding_dim,
               .out_channels = opt.channels,
               .kernel = opt.kernel,
               .padding = (opt.kernel - 1) / 2},
              gen) {}

  /// The options the encoder was built with.
  const options& config() const { return opt_; }

  /// Latents of every sentence. Shapes: ids `[B, S, L]`, z resized to `[B, S, channels]`.
  void forward(const tensor3<std::int32_t>& ids, tensor3<T>& z) {
    const std::size_t B = ids.shape()[0], S = ids.shape()[1], L = ids.shape()[2];
    if (L == 0)
      throw shape_error("sentence_encoder forward input: expected [*, *, >= 1] token ids, got " +
                        shape_string(ids.shape()));
    ensure_shape(rows_, std::array<std::size_t, 2>{B * S, L});
    std::copy(ids.data(), ids.data() + ids.size(), rows_.data());
    lengths_.assign(B * S, 0);
    for (std::size_t r = 0; r < B * S; ++r) {
      std::size_t n = 0;
      while (n < L && rows_(r, n) != opt_.padding_id) ++n;
      lengths_[r] = n;
    }
    embed_.forward(rows_, e_);
    conv_.forward(e_, h_);
    relu_.forward(h_, a_);
    pool_.forward(a_, lengths_, pooled_);
    ensure_shape(z, std::array<std::size_t, 3>{B, S, opt_.channels});
    std::copy(pooled_.data(), pooled_.data() + pooled_.size(), z.data());
  }

  /// Accumulates the parameters' gradients from dz `[B, S, channels]` (the last forward's batch).
  /// Errors: `cpc::shape_error` when dz's shape is not the last forward's z shape.
  void backward(const tensor3<T>& dz) {
    const std::size_t rows = rows_.shape()[0];
    if (dz.size() != rows * opt_.channels || dz.shape()[2] != opt_.channels)
      throw shape_error("sentence_encoder backward: expected a gradient of " + std::to_string(rows) + " x " +
                        std::to_string(opt_.channels) + " values (the last forward's [B, S, " +
                        std::to_string(opt_.channels) + "]), got " + shape_string(dz.shape()));
    ensure_shape(dpooled_, std::array<std::size_t, 2>{rows, opt_.channels});
    std::copy(dz.data(), dz.data() + dz.size(), dpooled_.data());
    pool_.backward(a_, lengths_, dpooled_, da_);
    relu_.backward(h_, a_, da_, &dh_);
    conv_.backward(e_, h_, dh_, &de_);
    embed_.backward(rows_, de_);
  }

  /// Tokens before the first padding id in each sentence of the last forward, `[B * S]` row-major.
  const std::vector<std::size_t>& lengths() const { return lengths_; }

  /// Visits "embedding.weight", "conv.weight", "conv.bias".
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    embed_.for_each_parameter(f, join_name(prefix, "embedding"));
    conv_.for_each_parameter(f, join_name(prefix, "conv"));
  }

  embedding<T, Backend>& embedding_layer() { return embed_; }
  conv1d<T, Backend>& conv() { return conv_; }

 private:
  static const options& check(const options& o) {
    if (o.vocabulary == 0 || o.embedding_dim == 0 || o.channels == 0 || o.kernel == 0)
      throw config_error("sentence_encoder: expected vocabulary, embedding_dim, channels and kernel > 0");
    if (o.kernel % 2 == 0)
      throw config_error("sentence_encoder: expected an odd kernel (the convolution keeps the length), got " +
                         std::to_string(o.kernel));
    if (o.padding_id < 0 || static_cast<std::size_t>(o.padding_id) >= o.vocabulary)
      throw config_error("sentence_encoder: expected padding_id in [0, " + std::to_string(o.vocabulary) +
                         "), got " + std::to_string(o.padding_id));
    return o;
  }

  options opt_;
  embedding<T, Backend> embed_;
  conv1d<T, Backend> conv_;
  relu<T, Backend> relu_;
  masked_mean_pool<T, Backend> pool_;
  tensor2<std::int32_t> rows_;  // [B * S, L]
  std::vector<std::size_t> lengths_;
  tensor3<T> e_, h_, a_, da_, dh_, de_;
  tensor2<T> pooled_, dpooled_;
};

}  // namespace cpc
