#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/encoder/patches.hpp"
#include "cpc/encoder/resnet_block.hpp"
#include "cpc/layers/conv2d.hpp"
#include "cpc/layers/layer_norm.hpp"

namespace cpc {

/// Sizes of `cpc::resnet_patch_encoder` (the same type for every element type and backend): widths,
/// depth and patch geometry (defaults: cpc::presets::image_small - 28x28 grey images, 7x7 grid of
/// 8x8 patches, 64 channels, stride-2 stem, 1 block).
struct resnet_patch_encoder_options {
  std::size_t in_channels = 1;
  std::size_t channels = 64;
  std::size_t blocks = 1;
  std::size_t kernel = 3;
  std::size_t stem_stride = 2;  ///< 2 halves each patch's side before the blocks (4x fewer MACs)
  patch_grid grid{};
};

/// The image encoder g_enc of CPC (van den Oord et al. 2018, section 3.2), small: every image is
/// cut into a grid of overlapping patches (`patch_grid`), and every patch goes through
///   stem conv (kernel x kernel, padding kernel / 2, stride `stem_stride`, C_in -> channels) ->
///   `blocks` pre-activation residual blocks with layer norm (`resnet_block`) -> layer norm + ReLU
///   -> mean over the patch's remaining pixels,
/// giving one latent vector per patch (the paper: ResNet-v2-101, mean-pooled to 1024-d).
/// Shapes: images `[batch, H, W, C_in]` -> z `[batch, rows, cols, channels]` (rows =
/// grid.count(H), cols = grid.count(W)). Parameters: "stem.{weight,bias}",
/// "block.{i}.{ln1,conv1,ln2,conv2}.*", "norm.{weight,bias}".
/// Errors: `cpc::config_error` for zero sizes or stride or an even kernel; `cpc::shape_error` for a wrong
/// channel count, an image smaller than one patch, or a latent gradient of the wrong shape.
/// Source: torch code in tests/golden/gen_image.py (PatchEncoder).
template <class T, class Backend = cpu>
class resnet_patch_encoder {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Encoder sizes (`cpc::resnet_patch_encoder_options`).
  using options = resnet_patch_encoder_options;

  /// Draws the stem, then each block's convolutions, from `gen`.
  resnet_patch_encoder(options opt, rng& gen)
      : opt_(check(opt)),
        stem_({.in_channels = opt.in_channels,
               .out_channels = opt.channels,
               .kernel = opt.kernel,
               .stride = opt.stem_stride,
               .padding = opt.kernel / 2},
              gen),
        norm_({.normalized_shape = opt.channels}) {
    blocks_.reserve(opt.blocks);
    for (std::size_t i = 0; i < opt.blocks; ++i)
      blocks_.emplace_back(resnet_block_options{opt.channels, opt.kernel}, gen);
    h_.resize(opt.blocks + 1);
  }

  /// The options the encoder was built with.
  const options& config() const { return opt_; }

  /// Grid extent (rows or cols) for an image extent (pixels). Errors: as `patch_grid::count`.
  std::size_t grid_size(std::size_t extent) const { return opt_.grid.count(extent); }

  /// Latents of every patch. Shapes: images `[B, H, W, C_in]`, z resized to `[B, rows, cols, channels]`.
  void forward(const tensor4<T>& images, tensor4<T>& z) {
    check_shape("resnet_patch_encoder input", images,
                {any, any, any, static_cast<std::ptrdiff_t>(opt_.in_channels)});
    const std::size_t B = images.shape()[0];
    rows_ = grid_size(images.shape()[1]);
    cols_ = grid_size(images.shape()[2]);
    extract_patches<Backend>(images, opt_.grid, patches_);
    stem_.forward(patches_, h_[0]);
    for (std::size_t i = 0; i < blocks_.size(); ++i) blocks_[i].forward(h_[i], h_[i + 1]);
    detail::as_frames<Backend>(h_.back(), f3_);
    norm_.forward_relu(f3_, a3_);
    const std::size_t N = a3_.shape()[0], Q = a3_.shape()[1], C = opt_.channels;
    ensure_shape(z, std::array<std::size_t, 4>{B, rows_, cols_, C});
    ops::patch_mean_pool<Backend>(ops::patch_mean_pool_args<T>{
        .patches = N, .pixels = Q, .channels = C, .x = a3_.data(), .y = z.data()});
  }

  /// Accumulates every parameter gradient from dz = d loss / d z of the last `forward`.
  /// Shapes: dz `[B, rows, cols, channels]` as z.
  void backward(const tensor4<T>& dz) {
    const std::size_t N = a3_.shape()[0], Q = a3_.shape()[1], C = opt_.channels;
    check_shape("resnet_patch_encoder latent gradient", dz,
                {static_cast<std::ptrdiff_t>(N / std::max<std::size_t>(1, rows_ * cols_)),
                 static_cast<std::ptrdiff_t>(rows_), static_cast<std::ptrdiff_t>(cols_),
                 static_cast<std::ptrdiff_t>(C)});
    ensure_shape(da3_, a3_.shape());
    ops::patch_mean_pool_backward<Backend>(ops::patch_mean_pool_backward_args<T>{
        .patches = N, .pixels = Q, .channels = C, .dy = dz.data(), .dx = da3_.data()});
    norm_.backward_relu(f3_, a3_, da3_, &df3_);
    detail::as_image<Backend>(df3_, h_.back().shape(), dh_);
    for (std::size_t i = blocks_.size(); i-- > 0;) {
      blocks_[i].backward(h_[i], h_[i + 1], dh_, &dh_prev_);
      std::swap(dh_, dh_prev_);
    }
    stem_.backward(patches_, h_[0], dh_, nullptr);
  }

  /// Visits "stem.*", "block.{i}.*", "norm.*".
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    stem_.for_each_parameter(f, join_name(prefix, "stem"));
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      blocks_[i].for_each_parameter(f, join_name(prefix, "block." + std::to_string(i)));
    norm_.for_each_parameter(f, join_name(prefix, "norm"));
  }

  /// The stem convolution.
  conv2d<T, Backend>& stem() { return stem_; }
  /// Residual block i. Errors: `std::out_of_range` for i >= blocks.
  resnet_block<T, Backend>& block(std::size_t i) { return blocks_.at(i); }

 private:
  static const options& check(const options& o) {
    if (o.in_channels == 0 || o.channels == 0 || o.stem_stride == 0)
      throw config_error("resnet_patch_encoder: expected in_channels, channels and stem_stride > 0");
    if (o.kernel % 2 == 0)
      throw config_error("resnet_patch_encoder: expected an odd kernel, got " + std::to_string(o.kernel));
    (void)o.grid.count(o.grid.size);  // validates size and stride
    return o;
  }

  options opt_;
  conv2d<T, Backend> stem_;
  std::vector<resnet_block<T, Backend>> blocks_;
  layer_norm<T, Backend> norm_;
  std::size_t rows_ = 0, cols_ = 0;
  tensor4<T> patches_, dh_, dh_prev_;
  std::vector<tensor4<T>> h_;  // h_[0] stem output, h_[i+1] block i output
  tensor3<T> f3_, a3_, da3_, df3_;
};

}  // namespace cpc
