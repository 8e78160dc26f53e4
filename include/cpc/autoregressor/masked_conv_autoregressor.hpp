#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/conv2d.hpp"
#include "cpc/layers/masked_conv2d.hpp"

namespace cpc {

/// Sizes of `cpc::masked_conv_autoregressor` (the same type for every element type and backend):
/// widths, depth and the (odd) kernel.
struct masked_conv_autoregressor_options {
  std::size_t input_size = 64;
  std::size_t hidden_size = 64;
  std::size_t layers = 3;
  std::size_t kernel = 3;
};

/// The image autoregressor g_ar of CPC (van den Oord et al. 2018, section 3.2: "a PixelCNN-style
/// autoregressive model"): a stack of `masked_conv2d` layers over the grid of patch latents,
///   h_0 = m_0(z),  h_l = h_{l-1} + m_l(relu(h_{l-1})) for l = 1 .. layers-1,  c = h_{layers-1},
/// so the context c[b, i, j] depends only on latents in rows <= i (every column), and each layer
/// widens the view by kernel / 2 rows upwards.
/// Shapes: z `[batch, rows, cols, input_size]` -> c `[batch, rows, cols, hidden_size]`.
/// Parameters: "layer.{l}.{weight,bias}". Errors: `cpc::config_error` for zero sizes or layers or
/// an even kernel; `cpc::shape_error` for a wrong latent width or gradient shape.
/// Source: PixelCNN masked convolutions (van den Oord et al. 2016, section 3.4) with residual
/// connections; layer sizes are this library's choice.
template <class T, class Backend = cpu>
class masked_conv_autoregressor {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Autoregressor sizes (`cpc::masked_conv_autoregressor_options`).
  using options = masked_conv_autoregressor_options;

  /// Draws layer 0 .. layers-1 from `gen`.
  masked_conv_autoregressor(options opt, rng& gen) : opt_(opt) {
    if (opt.input_size == 0 || opt.hidden_size == 0 || opt.layers == 0)
      throw config_error("masked_conv_autoregressor: expected input_size, hidden_size and layers > 0");
    layers_.reserve(opt.layers);
    for (std::size_t l = 0; l < opt.layers; ++l)
      layers_.emplace_back(masked_conv2d_options{.in_channels = l == 0 ? opt.input_size : opt.hidden_size,
                                                 .out_channels = opt.hidden_size,
                                                 .kernel = opt.kernel},
                           gen);
    h_.resize(opt.layers);
    a_.resize(opt.layers);
  }

  /// The options the autoregressor was built with.
  const options& config() const { return opt_; }

  /// Rows above a context that it can see: layers * (kernel / 2).
  std::size_t receptive_rows() const { return opt_.layers * (opt_.kernel / 2); }

  /// c = g_ar(z). Keeps the activations for `backward`.
  void forward(const tensor4<T>& z, tensor4<T>& c) {
    check_shape("masked_conv_autoregressor input", z,
                {any, any, any, static_cast<std::ptrdiff_t>(opt_.input_size)});
    tensor4<T>& out0 = opt_.layers == 1 ? c : h_[0];
    layers_[0].forward(z, out0);
    for (std::size_t l = 1; l < opt_.layers; ++l) {
      const tensor4<T>& prev = l == 1 ? out0 : h_[l - 1];
      relu(prev, a_[l]);
      tensor4<T>& out = l + 1 == opt_.layers ? c : h_[l];
      layers_[l].forward(a_[l], out);
      ops::axpby<Backend>(ops::axpby_args<T>{
          .n = out.size(), .alpha = T(1), .x = prev.data(), .beta = T(1), .y = out.data()});
    }
  }

  /// Accumulates every parameter gradient; writes dz (overwritten) when not null. Must follow a
  /// `forward` on the same z. Shapes: z, dz `[B, R, C, input]`; c, dc `[B, R, C, hidden]`.
  void backward(const tensor4<T>& z, const tensor4<T>& c, const tensor4<T>& dc, tensor4<T>* dz) {
    check_shape("masked_conv_autoregressor context gradient", dc,
                {static_cast<std::ptrdiff_t>(c.shape()[0]), static_cast<std::ptrdiff_t>(c.shape()[1]),
                 static_cast<std::ptrdiff_t>(c.shape()[2]), static_cast<std::ptrdiff_t>(opt_.hidden_size)});
    ensure_shape(g_, dc.shape());
    ops::copy<Backend>(ops::copy_args<T>{.n = dc.size(), .x = dc.data(), .y = g_.data()});
    for (std::size_t l = opt_.layers; l-- > 1;) {
      layers_[l].backward(a_[l], c, g_, &ga_);
      // d h_{l-1} = g (residual) + ga * relu'(h_{l-1}), relu' read from a_l = relu(h_{l-1}) > 0.
      ops::add_where_positive<Backend>(ops::add_where_positive_args<T>{
          .n = g_.size(), .gate = a_[l].data(), .x = ga_.data(), .y = g_.data()});
    }
    layers_[0].backward(z, c, g_, dz);
  }

  /// Visits "layer.{l}.weight" `[hidden, in, k, k]` and "layer.{l}.bias".
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    for (std::size_t l = 0; l < layers_.size(); ++l)
      layers_[l].for_each_parameter(f, join_name(prefix, "layer." + std::to_string(l)));
  }

  /// Masked layer l. Errors: `std::out_of_range` for l >= layers.
  masked_conv2d<T, Backend>& layer(std::size_t l) { return layers_.at(l); }

 private:
  static void relu(const tensor4<T>& x, tensor4<T>& y) {
    ensure_shape(y, x.shape());
    ops::relu_forward<Backend>(ops::relu_forward_args<T>{.n = x.size(), .x = x.data(), .y = y.data()});
  }

  options opt_;
  std::vector<masked_conv2d<T, Backend>> layers_;
  std::vector<tensor4<T>> h_, a_;  // h_[l] output of layer l (but the last), a_[l] = relu(h_[l-1])
  tensor4<T> g_, ga_;
};

}  // namespace cpc
