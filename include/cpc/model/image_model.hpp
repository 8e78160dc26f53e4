#pragma once
/// The CPC image model (van den Oord et al. 2018, section 3.2): patch encoder, masked-convolution
/// autoregressor over the patch grid and InfoNCE over rows, composed at compile time.
#include <concepts>
#include <type_traits>

#include "cpc/autoregressor/masked_conv_autoregressor.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/batch.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/encoder/resnet_patch_encoder.hpp"
#include "cpc/loss/grid_info_nce.hpp"
#include "cpc/model/model_core.hpp"

namespace cpc {

namespace presets {
/// A small image model for 28x28 grey digits / clothes (MNIST, Fashion-MNIST): a 7x7 grid of 8x8
/// patches (stride 4, padding 2), a patch ResNet with 64 channels, a stride-2 stem (8x8 -> 4x4
/// pixels per patch) and 1 residual block, a 3-layer masked autoregressor with 64 channels, K = 3
/// rows ahead, N = 32 negatives from the whole batch. On Fashion-MNIST, 5 minutes of training on
/// 2 cores lifts the mean-pooled probe well above the random encoder (README, "Images").
struct image_small {
  static constexpr std::size_t in_channels = 1;
  static constexpr std::size_t latent_channels = 64;
  static constexpr std::size_t encoder_blocks = 1;
  static constexpr std::size_t stem_stride = 2;
  static constexpr std::size_t context_channels = 64;
  static constexpr std::size_t autoregressor_layers = 3;
  static constexpr std::size_t kernel = 3;
  static constexpr std::size_t patch_size = 8;
  static constexpr std::size_t patch_stride = 4;
  static constexpr std::size_t patch_padding = 2;
  static constexpr std::size_t prediction_steps = 3;
  static constexpr std::size_t negatives = 32;
};

/// A tiny image model for tests: 8 channels, 1 block, 2 masked layers, K = 2, N = 4, on the
/// same 7x7 grid of 8x8 patches and stride-2 stem.
struct image_tiny : image_small {
  static constexpr std::size_t latent_channels = 8;
  static constexpr std::size_t context_channels = 8;
  static constexpr std::size_t autoregressor_layers = 2;
  static constexpr std::size_t prediction_steps = 2;
  static constexpr std::size_t negatives = 4;
};
}  // namespace presets

/// Patch encoder options from an image configuration.
template <class T, class Backend, class Config>
requires requires {
  Config::patch_size;
}
typename resnet_patch_encoder<T, Backend>::options default_options(
    std::type_identity<resnet_patch_encoder<T, Backend>>, Config) {
  return {
      .in_channels = Config::in_channels,
      .channels = Config::latent_channels,
      .blocks = Config::encoder_blocks,
      .kernel = Config::kernel,
      .stem_stride = Config::stem_stride,
      .grid = {.size = Config::patch_size, .stride = Config::patch_stride, .padding = Config::patch_padding}};
}

/// Masked autoregressor options: latent -> context channels.
template <class T, class Backend, class Config>
typename masked_conv_autoregressor<T, Backend>::options default_options(
    std::type_identity<masked_conv_autoregressor<T, Backend>>, Config) {
  return {.input_size = Config::latent_channels,
          .hidden_size = Config::context_channels,
          .layers = Config::autoregressor_layers,
          .kernel = Config::kernel};
}

/// Grid InfoNCE options: context -> latent heads, K rows ahead, N negatives.
template <class T, class Backend, class Config>
typename grid_info_nce<T, Backend>::options default_options(std::type_identity<grid_info_nce<T, Backend>>,
                                                            Config) {
  typename grid_info_nce<T, Backend>::options o;
  o.context_dim = Config::context_channels;
  o.latent_dim = Config::latent_channels;
  o.steps = Config::prediction_steps;
  o.negatives = Config::negatives;
  return o;
}

/// An encoder from images `[batch, H, W, C]` to a grid of latents `[batch, rows, cols, D]`.
template <class E, class T>
concept image_encoder = requires(E e, const tensor4<T>& images, tensor4<T>& z, const tensor4<T>& dz) {
  e.forward(images, z);
  e.backward(dz);
};

/// A grid autoregressor `[B, R, C, in]` -> `[B, R, C, hidden]` whose row i sees rows <= i only.
template <class A, class T>
concept grid_autoregressor = requires(A a, const tensor4<T>& x, tensor4<T>& y, const tensor4<T>& dy,
                                      tensor4<T>* dx) {
  a.forward(x, y);
  a.backward(x, y, dy, dx);
};

/// A contrastive loss over latent and context grids.
template <class L, class T>
concept grid_contrastive_loss = requires(L l, const tensor4<T>& z, const tensor4<T>& c, rng& gen,
                                         tensor4<T>* dz, tensor4<T>* dc) {
  { l.compute(z, c, gen, dz, dc) } -> std::same_as<info_nce_result>;
};

/// A CPC image model, e.g. `cpc::image_model<cpc::presets::image_small, cpc::resnet_patch_encoder,
/// cpc::masked_conv_autoregressor, cpc::grid_info_nce>`. Shapes: images `[batch, H, W, C]` (float,
/// any scale; the examples use pixel / 255), latents z `[batch, rows, cols, latent]`, contexts c
/// `[batch, rows, cols, context]`. Parameter names: "encoder.*", "autoregressor.*", "loss.*".
/// Errors: `cpc::config_error` when the components' sizes disagree; `cpc::shape_error` for an
/// empty batch in training or evaluation; components' own errors for wrong input shapes.
template <class Config, template <class, class> class Encoder, template <class, class> class Autoregressor,
          template <class, class> class Loss, class T = float, class Backend = cpu>
class image_model : public detail::model_core<Config, Encoder<T, Backend>, Autoregressor<T, Backend>,
                                              Loss<T, Backend>, T, tensor4<T>, Backend> {
  CPC_REQUIRE_BACKEND(Backend);
  static_assert(std::is_floating_point_v<T>, "cpc::image_model: T must be float or double");
  using core = typename image_model::model_core;

 public:
  using typename core::options;
  /// The batch `compute_gradients`, `evaluate`, `train_step` and `cpc::train` take (what
  /// `cpc::image_sampler` yields).
  using batch_type = image_batch<T>;

  static_assert(
      image_encoder<Encoder<T, Backend>, T>,
      "cpc::image_model: Encoder must map images [batch, H, W, C] to a latent grid - it needs "
      "forward(const tensor4<T>&, tensor4<T>&) and backward(const tensor4<T>&), like resnet_patch_encoder");
  static_assert(grid_autoregressor<Autoregressor<T, Backend>, T>,
                "cpc::image_model: Autoregressor must map a latent grid to a context grid - it needs "
                "forward(x, y) and backward(x, y, dy, dx) on tensor4, like masked_conv_autoregressor");
  static_assert(
      grid_contrastive_loss<Loss<T, Backend>, T>,
      "cpc::image_model: Loss must provide compute(z, c, rng&, dz*, dc*) -> info_nce_result on grids, "
      "like grid_info_nce");
  static_assert(configurable_by<Encoder<T, Backend>, Config> &&
                    configurable_by<Autoregressor<T, Backend>, Config> &&
                    configurable_by<Loss<T, Backend>, Config>,
                "cpc::image_model: Config gives no options for one of the components - define "
                "default_options(std::type_identity<Component>, Config) (see cpc/model/image_model.hpp)");

  /// Builds encoder, autoregressor and loss in that order from one generator seeded with `opt.seed`.
  explicit image_model(options opt = {}) : core(opt, "cpc::image_model", "H, W, C") {}

  /// Latent and context grids of `images` (for probes). Buffers are resized and reused.
  void encode(const tensor4<T>& images, tensor4<T>& z, tensor4<T>& c) { this->forward(images, z, c); }

  /// Latent grid only (the probe features of the paper: mean-pooled patch latents).
  void encode_latents(const tensor4<T>& images, tensor4<T>& z) { this->encoder().forward(images, z); }

  /// Zeroes every gradient, runs forward, loss (negatives from the model's generator) and backward.
  info_nce_result compute_gradients(const tensor4<T>& images) { return this->gradients(images); }
  /// `compute_gradients(batch.images)`.
  info_nce_result compute_gradients(const batch_type& batch) { return compute_gradients(batch.images); }

  /// Loss and accuracies without gradients.
  info_nce_result evaluate(const tensor4<T>& images) { return this->loss_without_gradients(images); }
  /// `evaluate(batch.images)`.
  info_nce_result evaluate(const batch_type& batch) { return evaluate(batch.images); }

  /// `compute_gradients` then one optimiser step.
  template <class Optimizer>
  info_nce_result train_step(const tensor4<T>& images, Optimizer& opt) {
    return core::step(opt, compute_gradients(images));
  }
  /// `train_step(batch.images, opt)`.
  template <class Optimizer>
  info_nce_result train_step(const batch_type& batch, Optimizer& opt) {
    return core::step(opt, compute_gradients(batch));
  }
};

/// The small image model in float: patch ResNet, masked-convolution autoregressor, grid InfoNCE.
template <class Config = presets::image_small, class T = float>
using cpc_image_model =
    image_model<Config, resnet_patch_encoder, masked_conv_autoregressor, grid_info_nce, T>;

}  // namespace cpc
