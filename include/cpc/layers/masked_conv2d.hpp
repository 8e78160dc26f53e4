#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/conv2d.hpp"

namespace cpc {

/// Sizes of `cpc::masked_conv2d` (the same type for every element type and backend); the kernel
/// is square and odd; `bias = false` drops the bias.
struct masked_conv2d_options {
  std::size_t in_channels = 0;
  std::size_t out_channels = 0;
  std::size_t kernel = 3;
  bool bias = true;
};

/// PixelCNN-style masked 2-D convolution (van den Oord et al. 2016, "Pixel Recurrent Neural
/// Networks", section 3.4; used as the image autoregressor of CPC, section 3.2): an odd `kernel`
/// x `kernel` convolution, stride 1, padding kernel / 2 ("same" size), whose kernel rows below the
/// centre row are zero. So output row i reads only input rows <= i (the whole of row i, all
/// columns), and a stack of these layers never lets a row see the rows below it.
/// Shapes: x `[batch, rows, cols, C_in]` -> y `[batch, rows, cols, C_out]`; weight
/// `[C_out, C_in, kernel, kernel]` (PyTorch's layout; the masked entries are kept at 0), bias
/// `[C_out]`. Init: PyTorch's default Conv2d init (U(+-1/sqrt(C_in*kernel*kernel))), then the mask.
/// Backward zeroes the masked entries of the weight gradient, so any optimiser keeps them at 0;
/// forward re-applies the mask as well, so weights loaded from elsewhere are masked too.
/// Errors: `cpc::config_error` for an even or zero kernel; otherwise as `cpc::conv2d`.
/// Source: torch.nn.Conv2d with weight * mask, mask[:, :, u, :] = (u <= kernel / 2).
template <class T, class Backend = cpu>
class masked_conv2d {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer sizes (`cpc::masked_conv2d_options`).
  using options = masked_conv2d_options;

  /// Builds the layer (PyTorch's default init from `gen`) and zeroes the masked weights.
  masked_conv2d(options opt, rng& gen) : opt_(check(opt)), conv_(conv_options(opt), gen) { apply_mask(); }

  /// The options the layer was built with.
  const options& config() const { return opt_; }

  /// Rows of the kernel that are kept: 0 .. kernel / 2 (the centre row and the rows above).
  std::size_t visible_rows() const { return opt_.kernel / 2 + 1; }

  /// y = masked_conv(x). Shapes: x `[B, R, C, C_in]`, y resized to `[B, R, C, C_out]`.
  void forward(const tensor4<T>& x, tensor4<T>& y) {
    apply_mask();
    conv_.forward(x, y);
  }

  /// Accumulates d weight (zero on masked entries) and d bias; writes dx when not null.
  void backward(const tensor4<T>& x, const tensor4<T>& y, const tensor4<T>& dy, tensor4<T>* dx) {
    apply_mask();
    conv_.backward(x, y, dy, dx);
    zero_masked(conv_.weight().grad);
  }

  /// Visits "weight" `[C_out, C_in, k, k]` and, with bias, "bias" `[C_out]`.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    conv_.for_each_parameter(f, prefix);
  }

  /// The weight `[C_out, C_in, k, k]` (masked entries 0 after any forward or backward).
  parameter<T>& weight() { return conv_.weight(); }
  /// The bias `[C_out]` (empty without bias).
  parameter<T>& bias() { return conv_.bias(); }

 private:
  static const options& check(const options& o) {
    if (o.kernel == 0 || o.kernel % 2 == 0)
      throw config_error("masked_conv2d: expected an odd kernel, got " + std::to_string(o.kernel));
    return o;
  }
  static conv2d_options conv_options(const options& o) {
    return {.in_channels = o.in_channels,
            .out_channels = o.out_channels,
            .kernel = o.kernel,
            .stride = 1,
            .padding = o.kernel / 2,
            .bias = o.bias};
  }

  // Zeroes rows u > kernel / 2 of every [kernel, kernel] slice of a weight-shaped array.
  void zero_masked(array_view<T>& w) const {
    const std::size_t k = opt_.kernel;
    ops::zero_kernel_rows<Backend>(ops::zero_kernel_rows_args<T>{
        .slices = w.size() / (k * k), .kernel = k, .keep_rows = visible_rows(), .w = w.data()});
  }
  void apply_mask() { zero_masked(conv_.weight().value); }

  options opt_;
  conv2d<T, Backend> conv_;
};

}  // namespace cpc
