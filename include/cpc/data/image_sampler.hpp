#pragma once
/// Minibatches of images for `cpc::train` (CPC on images, van den Oord et al. 2018, section 3.2):
/// shuffled epochs over an image tensor, yielding `cpc::image_batch<float>`.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "cpc/core/batch.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Options of `image_sampler`.
struct image_sampler_options {
  std::size_t batch_size = 32;  ///< images per batch
  std::uint64_t seed = 0;       ///< seed of the generator that shuffles each epoch
};

/// Draws batches of `batch_size` images from `images` `[N, H, W, C]` in epochs: each epoch is a
/// new order of all N images (a Fisher-Yates shuffle by the sampler's generator), cut into
/// consecutive batches; an epoch's last batch if incomplete is dropped and the next epoch begins.
/// `image_batch::indices` holds each row's image index. Holds a reference to `images`, which must
/// outlive the sampler. Checkpoints can save `generator()`; a resumed sampler starts a new epoch.
/// Errors: `cpc::config_error` for batch_size 0 or more images per batch than there are.
class image_sampler {
 public:
  using options = image_sampler_options;

  image_sampler(const tensor4<float>& images, options opt) : images_(&images), opt_(opt), gen_(opt.seed) {
    const std::size_t n = images.shape()[0];
    if (opt.batch_size == 0 || opt.batch_size > n)
      throw config_error("image_sampler: expected 1 to " + std::to_string(n) + " images per batch, got " +
                         std::to_string(opt.batch_size));
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    pos_ = n;  // the first call starts an epoch
  }

  /// Fills `batch` (reusing its buffers) with the next `batch_size` images of the epoch.
  void next(image_batch<float>& batch) {
    const std::size_t n = order_.size(), b = opt_.batch_size;
    if (pos_ + b > n) {
      for (std::size_t i = n; i > 1; --i) std::swap(order_[i - 1], order_[gen_.uniform_int(i)]);
      pos_ = 0;
    }
    const auto& s = images_->shape();
    const std::size_t per = s[1] * s[2] * s[3];
    ensure_shape(batch.images, std::array<std::size_t, 4>{b, s[1], s[2], s[3]});
    batch.indices.assign(order_.begin() + static_cast<std::ptrdiff_t>(pos_),
                         order_.begin() + static_cast<std::ptrdiff_t>(pos_ + b));
    for (std::size_t i = 0; i < b; ++i)
      std::copy_n(images_->data() + batch.indices[i] * per, per, batch.images.data() + i * per);
    pos_ += b;
  }

  /// The generator that shuffles the epochs.
  rng& generator() { return gen_; }

 private:
  const tensor4<float>* images_;
  options opt_;
  rng gen_;
  std::vector<std::size_t> order_;
  std::size_t pos_ = 0;
};

}  // namespace cpc
