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
#include "cpc/layers/channel_norm.hpp"
#include "cpc/layers/conv1d.hpp"
#include "cpc/layers/relu.hpp"

namespace cpc {

/// Normalisation after each convolution of `strided_conv_encoder`.
enum class encoder_normalisation {
  none,          ///< conv -> ReLU (the paper names no normalisation)
  channel_norm,  ///< conv -> per-frame channel norm -> ReLU (public CPC reimplementations)
};

/// Layer widths and geometry of `cpc::strided_conv_encoder` (the same type for every element type
/// and backend); kernels, strides and paddings must have the same length (the number of conv
/// blocks). The defaults are the paper's encoder (section 3.1) with the paddings of
/// facebookresearch/CPC_audio.
struct strided_conv_encoder_options {
  std::size_t channels = 512;
  std::vector<std::size_t> kernels{10, 8, 4, 4, 4};
  std::vector<std::size_t> strides{5, 4, 2, 2, 2};
  std::vector<std::size_t> paddings{3, 2, 1, 1, 1};
  encoder_normalisation normalisation = encoder_normalisation::channel_norm;
  double norm_eps = 1e-5;  ///< eps of every channel norm (a converted CPC_audio model sets its own)
};

/// The paper's audio encoder g_enc: a stack of strided 1-D convolutions over raw 16 kHz audio,
/// each block conv -> channel_norm -> ReLU (the norm can be turned off). With the defaults
/// (kernels 10,8,4,4,4, strides 5,4,2,2,2, paddings 3,2,1,1,1, 512 channels) the total stride is
/// 160 samples, one latent every 10 ms, and a 20480-sample window gives 128 frames.
/// Shapes: audio `[batch, samples]` -> z `[batch, frames, channels]`.
/// Parameters: "conv{i}.weight" `[channels, C_in, kernel_i]` (C_in = 1 for i = 0), "conv{i}.bias"
/// `[channels]`, "norm{i}.weight", "norm{i}.bias" `[channels]`.
/// Errors: `cpc::config_error` for inconsistent options; `cpc::shape_error` for audio that is
/// too short or a gradient of the wrong shape; `cpc::error` for backward before forward.
/// Source: van den Oord et al. 2018, section 3.1; channel norm as in facebookresearch/CPC_audio.
template <class T, class Backend = cpu>
class strided_conv_encoder {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer widths and geometry (`cpc::strided_conv_encoder_options`).
  using options = strided_conv_encoder_options;

  /// Builds the blocks in order, drawing each convolution's PyTorch default init from `gen`.
  strided_conv_encoder(options opt, rng& gen) : opt_(std::move(opt)) {
    validate(opt_);
    const std::size_t n = opt_.kernels.size();
    convs_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      convs_.emplace_back(conv1d_options{.in_channels = i == 0 ? 1 : opt_.channels,
                                         .out_channels = opt_.channels,
                                         .kernel = opt_.kernels[i],
                                         .stride = opt_.strides[i],
                                         .padding = opt_.paddings[i]},
                          gen);
      if (normalised())
        norms_.emplace_back(channel_norm_options{.channels = opt_.channels, .eps = opt_.norm_eps});
    }
    pre_.resize(n);
    act_.resize(n);
    dpre_.resize(n);
    dact_.resize(n);
  }

  /// The options the encoder was built with.
  const options& config() const { return opt_; }

  /// Number of frames for `samples` audio samples under `opt` (0 when too short for one frame).
  static std::size_t frames(std::size_t samples, const options& opt) {
    validate(opt);
    std::size_t t = samples;
    for (std::size_t i = 0; i < opt.kernels.size(); ++i) {
      if (t + 2 * opt.paddings[i] < opt.kernels[i]) return 0;
      t = conv1d<T, Backend>::output_length(t, opt.kernels[i], opt.strides[i], opt.paddings[i]);
    }
    return t;
  }
  /// Number of frames this encoder gives for `samples` samples (20480 -> 128 with the defaults).
  std::size_t frames(std::size_t samples) const { return frames(samples, opt_); }

  /// Product of the strides: samples per frame (160 with the defaults, 10 ms at 16 kHz).
  static std::size_t total_stride(const options& opt) {
    std::size_t s = 1;
    for (auto v : opt.strides) s *= v;
    return s;
  }
  /// Product of this encoder's strides.
  std::size_t total_stride() const { return total_stride(opt_); }

  /// First and last input sample that frame `t` depends on, through every block's window and
  /// padding: [160 t - 153, 160 t + 311] with the defaults. Values outside [0, samples) are
  /// padding. Used by streaming to know when a frame is final.
  std::pair<std::ptrdiff_t, std::ptrdiff_t> receptive_field(std::size_t t) const {
    auto lo = static_cast<std::ptrdiff_t>(t), hi = lo;
    for (std::size_t i = opt_.kernels.size(); i-- > 0;) {
      const auto k = static_cast<std::ptrdiff_t>(opt_.kernels[i]),
                 s = static_cast<std::ptrdiff_t>(opt_.strides[i]),
                 p = static_cast<std::ptrdiff_t>(opt_.paddings[i]);
      lo = lo * s - p;
      hi = hi * s - p + k - 1;
    }
    return {lo, hi};
  }

  /// Fewest samples that give one frame.
  std::size_t min_samples() const {
    std::size_t need = 1;  // output length needed from the block being considered
    for (std::size_t i = opt_.kernels.size(); i-- > 0;) {
      const std::size_t k = opt_.kernels[i], s = opt_.strides[i], p = opt_.paddings[i];
      need = (need - 1) * s + k > 2 * p ? (need - 1) * s + k - 2 * p : 1;
    }
    return need;
  }

  /// z = g_enc(audio). Keeps every block's activations for `backward` in member buffers, which
  /// are reused while the shapes stay the same. Shapes: audio `[B, samples]`, z resized to
  /// `[B, frames, channels]`. Errors: `cpc::shape_error` when samples < min_samples().
  void forward(const tensor2<T>& audio, tensor3<T>& z) {
    const std::size_t batch = audio.shape()[0], samples = audio.shape()[1];
    if (samples < min_samples())
      throw shape_error("strided_conv_encoder forward audio: expected [*, >= " +
                        std::to_string(min_samples()) + "] samples, got " + shape_string(audio.shape()));
    ensure_shape(audio_, std::array<std::size_t, 3>{batch, samples, 1});
    ops::copy<Backend>(ops::copy_args<T>{.n = audio.size(), .x = audio.data(), .y = audio_.data()});
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      convs_[i].forward(input(i), pre_[i]);
      if (normalised())
        norms_[i].forward_relu(pre_[i], act_[i]);
      else
        relu_.forward(pre_[i], act_[i]);
    }
    ensure_shape(z, act_.back().shape());
    ops::copy<Backend>(ops::copy_args<T>{.n = z.size(), .x = act_.back().data(), .y = z.data()});
    forwarded_ = true;
  }

  /// Accumulates the gradients of every parameter for the output gradient `dz`, using the
  /// activations of the last `forward`. Shapes: dz `[B, frames, channels]` as z was.
  /// Errors: `cpc::shape_error` when dz's shape differs from z's; `cpc::error` before forward.
  void backward(const tensor3<T>& dz) {
    if (!forwarded_) throw error("strided_conv_encoder backward: called before forward");
    const auto& zs = act_.back().shape();
    check_shape("strided_conv_encoder backward dz", dz,
                {static_cast<std::ptrdiff_t>(zs[0]), static_cast<std::ptrdiff_t>(zs[1]),
                 static_cast<std::ptrdiff_t>(zs[2])});
    for (std::size_t i = convs_.size(); i-- > 0;) {
      const bool last = i + 1 == convs_.size();
      const tensor3<T>& dact = last ? dz : dact_[i];
      // Channel norm replaces a block's gradient in place (one buffer per block instead of two;
      // dz itself is the caller's and stays unchanged).
      tensor3<T>& dpre = normalised() && !last ? dact_[i] : dpre_[i];
      if (normalised())
        norms_[i].backward_relu(pre_[i], act_[i], dact, &dpre);
      else
        relu_.backward(pre_[i], act_[i], dact, &dpre);
      convs_[i].backward(input(i), pre_[i], dpre, i == 0 ? nullptr : &dact_[i - 1]);
    }
  }

  /// Visits conv{i}.weight, conv{i}.bias and (with channel norm) norm{i}.weight, norm{i}.bias
  /// for i = 0, 1, ..., block by block.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      convs_[i].for_each_parameter(f, join_name(prefix, "conv" + std::to_string(i)));
      if (normalised()) norms_[i].for_each_parameter(f, join_name(prefix, "norm" + std::to_string(i)));
    }
  }

  /// Block i's convolution. Errors: `std::out_of_range` for i >= the number of blocks.
  conv1d<T, Backend>& conv(std::size_t i) { return convs_.at(i); }
  /// Block i's channel norm. Errors: `std::out_of_range` for i >= the number of blocks, or for any
  /// i without channel norm.
  channel_norm<T, Backend>& norm(std::size_t i) { return norms_.at(i); }

 private:
  static void validate(const options& opt) {
    const std::size_t n = opt.kernels.size();
    if (n == 0 || opt.strides.size() != n || opt.paddings.size() != n)
      throw config_error(
          "strided_conv_encoder: expected kernels, strides and paddings of one length >= 1, got " +
          std::to_string(n) + ", " + std::to_string(opt.strides.size()) + ", " +
          std::to_string(opt.paddings.size()));
    if (opt.channels == 0) throw config_error("strided_conv_encoder: expected channels > 0, got 0");
    for (std::size_t i = 0; i < n; ++i)
      if (opt.kernels[i] == 0 || opt.strides[i] == 0)
        throw config_error("strided_conv_encoder: expected kernels and strides > 0, got 0 in block " +
                           std::to_string(i));
  }

  bool normalised() const { return opt_.normalisation == encoder_normalisation::channel_norm; }
  const tensor3<T>& input(std::size_t i) const { return i == 0 ? audio_ : act_[i - 1]; }

  options opt_;
  std::vector<conv1d<T, Backend>> convs_;
  std::vector<channel_norm<T, Backend>> norms_;
  relu<T, Backend> relu_;
  tensor3<T> audio_;                     // the input as `[B, samples, 1]`
  std::vector<tensor3<T>> pre_, act_;    // per block: conv output, block output (after ReLU)
  std::vector<tensor3<T>> dpre_, dact_;  // their gradients (with channel norm, dpre_ only for the last
                                         // block: the others' replace dact_ in place)
  bool forwarded_ = false;
};

}  // namespace cpc
