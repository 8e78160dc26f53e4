// The whole models on both host backends: the paper's audio model and the small image model train
// one step on cpc::reference (every kernel a plain loop in double) with the loss, gradients and
// updated weights of cpc::cpu. This is what shows that the backend tag alone picks every kernel.
#include <doctest/doctest.h>

#include <cpc/model/image_model.hpp>
#include <cpc/model/model.hpp>
#include <cpc/optim/adam.hpp>

#include <string>
#include <vector>

#include "support/backend_parity.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

/// Norm-wise relative difference of two models' gradients (or values), over every parameter.
template <class A, class B>
double relative_difference(const A& pa, const B& pb, bool grads) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const auto& x = grads ? pa[i].second->grad : pa[i].second->value;
    const auto& y = grads ? pb[i].second->grad : pb[i].second->value;
    for (std::size_t j = 0; j < x.size(); ++j) {
      const double d = static_cast<double>(x.data()[j]) - static_cast<double>(y.data()[j]);
      diff += d * d;
      norm += static_cast<double>(y.data()[j]) * static_cast<double>(y.data()[j]);
    }
  }
  return std::sqrt(diff / std::max(norm, 1e-300));
}

template <class ModelCpu, class ModelRef, class Input>
void check_one_step(ModelCpu& a, ModelRef& b, const Input& x) {
  adam<float, cpu> opt_a(a.parameters(), {.learning_rate = 1e-3});
  adam<float, reference> opt_b(b.parameters(), {.learning_rate = 1e-3});
  REQUIRE(a.parameters().size() == b.parameters().size());
  CHECK(relative_difference(a.parameters(), b.parameters(), false) == 0.0);  // same initial weights
  const auto ra = a.compute_gradients(x);
  const auto rb = b.compute_gradients(x);
  CAPTURE(ra.loss);
  CAPTURE(rb.loss);
  CHECK(std::abs(ra.loss - rb.loss) <= 1e-4 * std::abs(rb.loss));
  for (std::size_t k = 0; k < ra.accuracy.size(); ++k) CHECK(ra.terms[k] == rb.terms[k]);
  CHECK(relative_difference(a.parameters(), b.parameters(), true) < 1e-3);
  opt_a.step();
  opt_b.step();
  CHECK(relative_difference(a.parameters(), b.parameters(), false) < 1e-4);
}

}  // namespace

TEST_CASE("model backends: the paper's audio model trains one step on reference with cpu's loss (1e-4)") {
  // The paper's architecture (5 strided convolutions x 512 channels, channel norm, GRU 256, K = 12,
  // N = 128) on a short window (2560 samples = 16 frames) to keep the reference run to seconds.
  using cpu_model = model<presets::audio_paper, strided_conv_encoder, gru, info_nce, float, cpu>;
  using ref_model = model<presets::audio_paper, strided_conv_encoder, gru, info_nce, float, reference>;
  typename cpu_model::options oa;
  typename ref_model::options ob;  // the same preset defaults on both backends
  oa.seed = ob.seed = 3;
  cpu_model a(oa);
  ref_model b(ob);
  rng gen(4);
  tensor2<float> audio = tensor2<float>::from_shape({2, 2560});
  fill_uniform(audio, gen, 0.3);
  check_one_step(a, b, audio);
}

TEST_CASE("model backends: the small image model trains one step on reference with cpu's loss (1e-4)") {
  using cpu_model = image_model<presets::image_small, resnet_patch_encoder, masked_conv_autoregressor,
                                grid_info_nce, float, cpu>;
  using ref_model = image_model<presets::image_small, resnet_patch_encoder, masked_conv_autoregressor,
                                grid_info_nce, float, reference>;
  cpu_model a;
  ref_model b;
  rng gen(5);
  tensor4<float> images = tensor4<float>::from_shape({3, 28, 28, 1});
  fill_uniform(images, gen, 1.0);
  check_one_step(a, b, images);
}
