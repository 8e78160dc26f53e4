#pragma once
/// InfoNCE over a grid of patches (van den Oord et al. 2018, section 3.2): the context of patch
/// (i, j) predicts the latents of the patches k = 1..K rows below it in the same column.
#include <array>
#include <cstddef>
#include <string_view>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/data/negative_sampler.hpp"
#include "cpc/loss/info_nce.hpp"

namespace cpc {

/// `cpc::info_nce` applied to a patch grid. Each column j of image b is one sequence over the
/// rows: sequence s = b * cols + j, "time" t = row i. Step k of info_nce (k = 1..K) then scores
/// the prediction W_k c[b, i, j] against the positive z[b, i + row_offset(k), j] with
/// row_offset(k) = k, and the negatives come from the sequences of the whole batch: with the
/// default `negative_policy::batch`, any patch of any image of the batch (other rows and columns
/// of the same image, and other images), the positive excluded. Anchors need i + k < rows, so the
/// step-k loss averages B * cols * (rows - k) terms.
/// Shapes: z `[batch, rows, cols, latent_dim]`, c `[batch, rows, cols, context_dim]`; negatives
/// (in `loss().sampler().indices()`) are flat indices s * rows + i of the column sequences.
/// Parameters: those of info_nce ("predictor.{k}.weight", ...). Errors: `cpc::shape_error` for a
/// grid with fewer than 2 rows (no positive below any anchor) or mismatched shapes; otherwise as
/// `cpc::info_nce`.
template <class T, class Backend = cpu>
class grid_info_nce {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Sizes and choices (`cpc::info_nce_options`, shared with `cpc::info_nce`).
  using options = info_nce_options;

  /// Builds the K prediction heads from `gen`.
  grid_info_nce(options opt, rng& gen) : loss_(opt, gen) {}

  /// The options the loss was built with.
  const options& config() const { return loss_.config(); }

  /// Row offset of prediction step k (1-based): the positive of anchor (b, i, j) is (b, i + k, j).
  static constexpr std::size_t row_offset(std::size_t k) { return k; }

  /// Row offsets of steps 1..K, in step order (strictly increasing, no duplicates).
  std::vector<std::size_t> row_offsets() const {
    std::vector<std::size_t> out(config().steps);
    for (std::size_t k = 1; k <= out.size(); ++k) out[k - 1] = row_offset(k);
    return out;
  }

  /// Loss and accuracies; with dz / dc non-null, overwrites them with the gradients (grid shapes)
  /// and accumulates the heads' parameter gradients. Negatives are drawn from `gen`.
  info_nce_result compute(const tensor4<T>& z, const tensor4<T>& c, rng& gen, tensor4<T>* dz,
                          tensor4<T>* dc) {
    check_shape("grid_info_nce z", z, {any, any, any, static_cast<std::ptrdiff_t>(config().latent_dim)});
    check_shape(
        "grid_info_nce c", c,
        {static_cast<std::ptrdiff_t>(z.shape()[0]), static_cast<std::ptrdiff_t>(z.shape()[1]),
         static_cast<std::ptrdiff_t>(z.shape()[2]), static_cast<std::ptrdiff_t>(config().context_dim)});
    if (z.shape()[1] < 2)
      throw shape_error(
          "grid_info_nce: expected a grid of at least 2 patch rows (the positives lie k >= 1 "
          "rows below), got z " +
          shape_string(z.shape()));
    to_columns(z, zc_);
    to_columns(c, cc_);
    info_nce_result r = loss_.compute(zc_, cc_, batch_info{}, gen, dz != nullptr ? &dzc_ : nullptr,
                                      dc != nullptr ? &dcc_ : nullptr);
    if (dz != nullptr) from_columns(dzc_, z.shape(), *dz);
    if (dc != nullptr) from_columns(dcc_, c.shape(), *dc);
    return r;
  }

  /// Grid position (b, i, j) of a flat column-sequence index from the negatives tensor.
  std::array<std::size_t, 3> grid_position(std::size_t flat, std::size_t rows, std::size_t cols) const {
    const std::size_t s = flat / rows;
    return {s / cols, flat % rows, s % cols};
  }

  /// The wrapped sequence loss (its sampler holds the last negatives).
  info_nce<T, Backend>& loss() { return loss_; }

  /// Visits the prediction heads, "predictor.{k}.*".
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    loss_.for_each_parameter(f, prefix);
  }

 private:
  // [B, R, C, D] -> [B * C, R, D]
  static void to_columns(const tensor4<T>& g, tensor3<T>& out) {
    const std::size_t B = g.shape()[0], R = g.shape()[1], C = g.shape()[2], D = g.shape()[3];
    ensure_shape(out, std::array<std::size_t, 3>{B * C, R, D});
    ops::transpose_grid<Backend>(ops::transpose_grid_args<T>{
        .batch = B, .rows = R, .cols = C, .dim = D, .x = g.data(), .y = out.data()});
  }
  // [B * C, R, D] -> [B, R, C, D]
  template <class Shape>
  static void from_columns(const tensor3<T>& s, const Shape& shape, tensor4<T>& out) {
    ensure_shape(out, shape);
    const std::size_t B = shape[0], R = shape[1], C = shape[2], D = shape[3];
    ops::transpose_grid<Backend>(ops::transpose_grid_args<T>{
        .batch = B, .rows = C, .cols = R, .dim = D, .x = s.data(), .y = out.data()});
  }

  info_nce<T, Backend> loss_;
  tensor3<T> zc_, cc_, dzc_, dcc_;
};

}  // namespace cpc
