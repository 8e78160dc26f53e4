#pragma once
/// Compile-time model configurations, and how each component reads them.
/// A configuration is a type with `static constexpr` members; `cpc::model` fills each component's
/// run-time options from it through `default_options(std::type_identity<Component>, Config)`,
/// an overload set that a new component extends (found by argument-dependent lookup).
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cpc/core/error.hpp"

#include "cpc/encoder/strided_conv_encoder.hpp"
#include "cpc/layers/gru.hpp"
#include "cpc/layers/lstm.hpp"
#include "cpc/loss/info_nce.hpp"
#include "cpc/loss/transformer_info_nce.hpp"

namespace cpc::presets {

/// The paper's audio model (section 3.1): 20480-sample windows (1.28 s at 16 kHz), encoder with
/// kernels 10,8,4,4,4, strides 5,4,2,2,2, paddings 3,2,1,1,1 and 512 channels (one latent per
/// 160 samples = 10 ms, 128 frames per window), channel norm, a 1-layer GRU with 256 units,
/// K = 12 prediction steps, N = 128 negatives from the whole batch.
struct audio_paper {
  static constexpr std::string_view name = "paper";  ///< as `with_audio_preset` and checkpoints name it
  static constexpr std::size_t window_samples = 20480;
  static constexpr std::size_t sample_rate = 16000;
  static constexpr std::size_t latent_channels = 512;
  static constexpr std::size_t context_channels = 256;
  static constexpr std::size_t autoregressor_layers = 1;
  static constexpr std::size_t prediction_steps = 12;
  static constexpr std::size_t negatives = 128;
  static constexpr std::array<std::size_t, 5> kernels{10, 8, 4, 4, 4};
  static constexpr std::array<std::size_t, 5> strides{5, 4, 2, 2, 2};
  static constexpr std::array<std::size_t, 5> paddings{3, 2, 1, 1, 1};
};

/// The paper's audio model at 256 encoder channels: a quarter of the encoder's FLOPs, for quick
/// runs on a laptop-class CPU. Everything else as `audio_paper`.
struct audio_small : audio_paper {
  static constexpr std::string_view name = "small";
  static constexpr std::size_t latent_channels = 256;
};

/// A tiny audio model for tests: 3 conv blocks (kernels 4,4,4, strides 4,4,2: 32 samples per
/// frame), 16 latent channels, 8 context channels, K = 3, N = 4.
struct audio_tiny {
  static constexpr std::string_view name = "tiny";
  static constexpr std::size_t window_samples = 512;
  static constexpr std::size_t sample_rate = 16000;
  static constexpr std::size_t latent_channels = 16;
  static constexpr std::size_t context_channels = 8;
  static constexpr std::size_t autoregressor_layers = 1;
  static constexpr std::size_t prediction_steps = 3;
  static constexpr std::size_t negatives = 4;
  static constexpr std::array<std::size_t, 3> kernels{4, 4, 4};
  static constexpr std::array<std::size_t, 3> strides{4, 4, 2};
  static constexpr std::array<std::size_t, 3> paddings{0, 0, 1};
};

/// Calls `f(preset{})` with the audio preset a program can name, `audio_paper` for "paper" or
/// `audio_small` for "small" (the preset's `name`; `audio_tiny` is for tests), and returns its
/// result: how a command line or a checkpoint's metadata picks a compile-time configuration at run
/// time. Both calls of `f` must return the same type.
/// Errors: `cpc::config_error` "<what>: expected paper or small, got '<name>'".
template <class F>
decltype(auto) with_audio_preset(std::string_view name, F&& f, std::string_view what = "audio preset") {
  if (name == audio_paper::name) return f(audio_paper{});
  if (name == audio_small::name) return f(audio_small{});
  throw config_error(std::string(what) + ": expected paper or small, got '" + std::string(name) + "'");
}

/// facebookresearch/CPC_audio's model as the ZeroSpeech 2021 "CPC-small" baseline describes it
/// (Nguyen et al. 2020; Rivière et al. 2020): the paper's encoder geometry at 256 channels with
/// CPC_audio's channel norm, a 2-layer LSTM with 256 units, K = 12 transformer prediction heads
/// (8 attention heads, feed-forward 2048, relative positions over 128 - 12 = 116 steps), N = 128.
/// A converted checkpoint sets its own sizes (see cpc/model/cpc_audio.hpp); this is the default.
struct cpc_audio_small {
  static constexpr std::size_t window_samples = 20480;
  static constexpr std::size_t sample_rate = 16000;
  static constexpr std::size_t latent_channels = 256;
  static constexpr std::size_t context_channels = 256;
  static constexpr std::size_t autoregressor_layers = 2;
  static constexpr std::size_t prediction_steps = 12;
  static constexpr std::size_t negatives = 128;
  static constexpr std::size_t attention_heads = 8;
  static constexpr std::size_t feed_forward = 2048;
  static constexpr std::array<std::size_t, 5> kernels{10, 8, 4, 4, 4};
  static constexpr std::array<std::size_t, 5> strides{5, 4, 2, 2, 2};
  static constexpr std::array<std::size_t, 5> paddings{3, 2, 1, 1, 1};
};

/// The ZeroSpeech 2021 "CPC-big" baseline: as `cpc_audio_small` with 512 encoder channels and a
/// 4-layer LSTM with 512 units (ZeroSpeech's ABX features are its second layer's outputs: convert
/// with `--layers 2`).
struct cpc_audio_big : cpc_audio_small {
  static constexpr std::size_t latent_channels = 512;
  static constexpr std::size_t context_channels = 512;
  static constexpr std::size_t autoregressor_layers = 4;
};

}  // namespace cpc::presets

namespace cpc {

/// Encoder options from an audio configuration: widths and geometry from `Config`.
template <class T, class Backend, class Config>
typename strided_conv_encoder<T, Backend>::options default_options(
    std::type_identity<strided_conv_encoder<T, Backend>>, Config) {
  typename strided_conv_encoder<T, Backend>::options o;
  o.channels = Config::latent_channels;
  o.kernels.assign(Config::kernels.begin(), Config::kernels.end());
  o.strides.assign(Config::strides.begin(), Config::strides.end());
  o.paddings.assign(Config::paddings.begin(), Config::paddings.end());
  return o;
}

/// GRU autoregressor options: latent -> context channels.
template <class T, class Backend, class Config>
recurrent_options default_options(std::type_identity<gru<T, Backend>>, Config) {
  return {.input_size = Config::latent_channels,
          .hidden_size = Config::context_channels,
          .num_layers = Config::autoregressor_layers};
}

/// LSTM autoregressor options: latent -> context channels.
template <class T, class Backend, class Config>
recurrent_options default_options(std::type_identity<lstm<T, Backend>>, Config) {
  return {.input_size = Config::latent_channels,
          .hidden_size = Config::context_channels,
          .num_layers = Config::autoregressor_layers};
}

/// InfoNCE options: context -> latent heads, K steps, N negatives, and small normal heads:
/// W_k ~ N(0, (1 / context_channels)^2). Why: with PyTorch's default head init (std ~0.036 at 256)
/// or unit-normal heads the initial scores spread by several nats, the loss starts far above
/// log(N + 1) and the model sits at chance for 100+ steps; with std 1/256 the initial loss is
/// log(N + 1) and the model leaves chance within ~20 steps (measured on the default corpus, 256
/// channels, batch 8, lr 2e-4 with warm-up: after 150 steps k=1 accuracy 0.64 vs 0.09 with std 1/16
/// and 0.01 with std 1). Other fields at their defaults.
template <class T, class Backend, class Config>
typename info_nce<T, Backend>::options default_options(std::type_identity<info_nce<T, Backend>>, Config) {
  typename info_nce<T, Backend>::options o;
  o.context_dim = Config::context_channels;
  o.latent_dim = Config::latent_channels;
  o.steps = Config::prediction_steps;
  o.negatives = Config::negatives;
  o.init = predictor_init::normal;
  o.init_scale = 1.0 / static_cast<double>(Config::context_channels);
  return o;
}

/// CPC_audio's transformer prediction network from a configuration: D = latent channels (context
/// channels must be equal), K steps, N negatives, max_time = window frames - K (116 for 1.28 s
/// windows), attention heads and feed-forward width from `Config` when it names them (else 8 and
/// 2048), scores as the mean over channels (CPC_audio's), other fields at their defaults.
template <class T, class Backend, class Config>
transformer_info_nce_options default_options(std::type_identity<transformer_info_nce<T, Backend>>, Config) {
  transformer_info_nce_options o;
  o.context_dim = Config::context_channels;
  o.latent_dim = Config::latent_channels;
  o.steps = Config::prediction_steps;
  o.negatives = Config::negatives;
  std::size_t stride = 1;
  for (auto s : Config::strides) stride *= s;
  const std::size_t frames = Config::window_samples / stride;
  o.max_time = frames > Config::prediction_steps ? frames - Config::prediction_steps : 1;
  if constexpr (requires { Config::attention_heads; }) o.heads = Config::attention_heads;
  if constexpr (requires { Config::feed_forward; }) o.ff_dim = Config::feed_forward;
  o.scale = score_scale::inv_dim;
  return o;
}

}  // namespace cpc
