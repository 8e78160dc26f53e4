#pragma once
/// Features of images for linear probes and retrieval (van den Oord et al. 2018, section 3.2: the
/// image probe reads the encoder's patch latents, mean-pooled over the grid), and nearest
/// neighbours in a feature space.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <utility>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Patch latents of images: `mean` `[N, D]` averaged over the grid's cells, `grid` `[N, cells * D]`
/// all of them side by side (cell-major: row r, column c, then channel).
struct image_latents {
  tensor2<float> mean, grid;
};

/// The patch latents of the first `n` images of `images` `[N, H, W, C]`, encoded `chunk` at a
/// time by `m.encode_latents(images, z)` (z `[B, rows, cols, D]`; e.g. `cpc::image_model`).
/// Errors: `cpc::config_error` when n exceeds N; the model's errors.
template <class Model>
image_latents encode_image_latents(Model& m, const tensor4<float>& images, std::size_t n,
                                   std::size_t chunk = 256) {
  if (n > images.shape()[0])
    throw config_error("encode_image_latents: asked for " + std::to_string(n) + " images of " +
                       std::to_string(images.shape()[0]));
  const std::size_t per = images.shape()[1] * images.shape()[2] * images.shape()[3];
  image_latents out;
  tensor4<float> batch, z;
  for (std::size_t b0 = 0; b0 < n; b0 += chunk) {
    const std::size_t nb = std::min(chunk, n - b0);
    ensure_shape(batch,
                 std::array<std::size_t, 4>{nb, images.shape()[1], images.shape()[2], images.shape()[3]});
    std::copy_n(images.data() + b0 * per, nb * per, batch.data());
    m.encode_latents(batch, z);
    const std::size_t cells = z.shape()[1] * z.shape()[2], d = z.shape()[3];
    if (b0 == 0) {
      out.mean = xt::zeros<float>({n, d});
      out.grid = xt::zeros<float>({n, cells * d});
    }
    std::copy_n(z.data(), nb * cells * d, out.grid.data() + b0 * cells * d);
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t q = 0; q < cells; ++q)
        for (std::size_t c = 0; c < d; ++c)
          out.mean(b0 + b, c) += z.data()[(b * cells + q) * d + c] / static_cast<float>(cells);
  }
  return out;
}

/// The first `n` images `[N, H, W, C]` as rows of raw pixels `[n, H * W * C]` (the pixel baseline).
inline tensor2<float> image_pixels(const tensor4<float>& images, std::size_t n) {
  const std::size_t per = images.shape()[1] * images.shape()[2] * images.shape()[3];
  tensor2<float> out = xt::zeros<float>({n, per});
  std::copy_n(images.data(), n * per, out.data());
  return out;
}

/// For each row of `queries` `[Q, D]`, the indices of its `k` nearest rows of `base` `[N, D]` by
/// cosine similarity after standardising every feature with `base`'s mean and population standard
/// deviation (most similar first; ties: the lower index). Returns `[Q][min(k, N)]`.
/// Errors: `cpc::shape_error` when the feature widths differ.
inline std::vector<std::vector<std::size_t>> nearest_neighbours(const tensor2<float>& base,
                                                                const tensor2<float>& queries,
                                                                std::size_t k) {
  const std::size_t d = base.shape()[1], n = base.shape()[0];
  check_shape("nearest_neighbours queries", queries, {any, static_cast<std::ptrdiff_t>(d)});
  k = std::min(k, n);
  std::vector<double> mean(d, 0), sd(d, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) mean[j] += base(i, j) / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) sd[j] += std::pow(base(i, j) - mean[j], 2) / static_cast<double>(n);
  const auto unit_row = [&](const tensor2<float>& f, std::size_t i) {
    std::vector<double> v(d);
    double n2 = 1e-12;
    for (std::size_t j = 0; j < d; ++j) {
      v[j] = (f(i, j) - mean[j]) / std::sqrt(sd[j] + 1e-12);
      n2 += v[j] * v[j];
    }
    for (auto& x : v) x /= std::sqrt(n2);
    return v;
  };
  std::vector<std::vector<double>> rows(n);
  for (std::size_t i = 0; i < n; ++i) rows[i] = unit_row(base, i);
  std::vector<std::vector<std::size_t>> out(queries.shape()[0]);
  for (std::size_t q = 0; q < out.size(); ++q) {
    const auto v = unit_row(queries, q);
    std::vector<std::pair<double, std::size_t>> sim(n);
    for (std::size_t i = 0; i < n; ++i)
      sim[i] = {-std::inner_product(v.begin(), v.end(), rows[i].begin(), 0.0), i};
    std::partial_sort(sim.begin(), sim.begin() + static_cast<std::ptrdiff_t>(k), sim.end());
    for (std::size_t j = 0; j < k; ++j) out[q].push_back(sim[j].second);
  }
  return out;
}

}  // namespace cpc
