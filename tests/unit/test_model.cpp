#include <doctest/doctest.h>

#include <cmath>

#include <cpc/model/context_stream.hpp>
#include <cpc/model/model.hpp>
#include <cpc/optim/adam.hpp>

#include <xtensor/xview.hpp>

#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

using tiny_model = model<presets::audio_tiny, strided_conv_encoder, gru, info_nce, double>;
using tiny_model_f = model<presets::audio_tiny, strided_conv_encoder, gru, info_nce, float>;

template <class T>
tensor2<T> random_audio(std::size_t batch, std::size_t samples, std::uint64_t seed) {
  rng gen(seed);
  tensor2<T> a = xt::zeros<T>({batch, samples});
  fill_uniform(a, gen, 0.5);
  return a;
}

// Each item: a sum of two sinusoids with item-specific frequencies and a little noise, so that
// future latents are predictable from the past and distinguishable from other items'.
tensor2<float> tone_batch(std::size_t batch, std::size_t samples, rng& gen) {
  tensor2<float> a = xt::zeros<float>({batch, samples});
  for (std::size_t b = 0; b < batch; ++b) {
    const double f1 = gen.uniform(0.01, 0.2), f2 = gen.uniform(0.01, 0.2), ph = gen.uniform(0.0, 6.28);
    for (std::size_t s = 0; s < samples; ++s)
      a(b, s) =
          static_cast<float>(0.5 * std::sin(f1 * s + ph) + 0.3 * std::sin(f2 * s) + 0.05 * gen.normal());
  }
  return a;
}

}  // namespace

TEST_CASE("model: the paper preset gives 128 frames of 512 latents and 256 contexts") {
  audio_model<presets::audio_paper> m;
  CHECK(m.frames(20480) == 128);
  CHECK(m.config().loss.steps == 12);
  CHECK(m.config().loss.negatives == 128);
  CHECK(m.config().loss.init == predictor_init::normal);
  CHECK(m.config().loss.init_scale == doctest::Approx(1.0 / 256));
  CHECK(m.config().autoregressor.hidden_size == 256);
  auto params = m.parameters();
  CHECK(params.front().first == "encoder.conv0.weight");
  CHECK(params.back().first == "loss.predictor.11.weight");
}

TEST_CASE("model: mismatched component sizes throw config_error naming them") {
  tiny_model::options o;
  o.autoregressor.input_size = 5;
  CHECK_THROWS_AS(tiny_model{o}, config_error);
  tiny_model::options o2;
  o2.loss.context_dim = 3;
  CHECK_THROWS_WITH_AS(tiny_model{o2},
                       "cpc::model: autoregressor hidden size (8) and loss context_dim (3) must be equal",
                       config_error);
}

TEST_CASE("model: finite differences through the whole tiny model in double") {
  tiny_model::options o;
  o.seed = 11;
  tiny_model m(o);
  const auto audio = random_audio<double>(2, 512, 3);
  const auto state = m.generator().state();
  const info_nce_result r = m.compute_gradients(audio);
  CHECK(std::isfinite(r.loss));
  auto loss = [&] {
    m.generator().set_state(state);  // the same negatives every time
    return m.evaluate(audio).loss;
  };
  for (auto& entry : m.parameters()) {
    auto& name = std::get<0>(entry);
    auto& p = std::get<1>(entry);
    // A few coordinates of each parameter keep the test quick.
    const std::size_t n = std::min<std::size_t>(p->size(), 24);
    std::vector<double> analytic(p->grad.data(), p->grad.data() + n);
    INFO(name);
    CHECK(gradient_error(loss, p->value.data(), n, analytic.data()) < 1e-6);
  }
}

TEST_CASE("model: c_t is bit-identical when only later audio changes (causality)") {
  tiny_model_f m;
  auto audio = random_audio<float>(2, 1024, 5);
  tensor3<float> z1, c1, z2, c2;
  m.encode(audio, z1, c1);
  // Frame t of the tiny encoder reads samples up to about 32 t + 48; change samples from 640 on.
  for (std::size_t s = 640; s < 1024; ++s) audio(1, s) += 0.25f;
  m.encode(audio, z2, c2);
  const std::size_t t_safe = 17;  // frames 0..17 end before sample 640 - margin
  bool same = true, later_changed = false;
  for (std::size_t t = 0; t <= t_safe; ++t)
    for (std::size_t j = 0; j < c1.shape()[2]; ++j) same = same && c1(1, t, j) == c2(1, t, j);
  for (std::size_t j = 0; j < c1.shape()[2]; ++j)
    later_changed = later_changed || c1(1, 31, j) != c2(1, 31, j);
  CHECK(same);
  CHECK(later_changed);
  // Item 0 did not change at all.
  CHECK(tensor2<float>(xt::view(c1, 0)) == tensor2<float>(xt::view(c2, 0)));
}

TEST_CASE("model: contexts from latents fed in chunks equal one pass (streaming)") {
  tiny_model_f m;
  const auto audio = random_audio<float>(2, 1024, 8);
  tensor3<float> z, c_full;
  m.encode(audio, z, c_full);
  tensor3<float> state, c_part, c_stream = xt::zeros<float>(c_full.shape());
  std::size_t t0 = 0;
  for (std::size_t len : {5u, 1u, 10u, 16u}) {
    tensor3<float> zc = xt::view(z, xt::all(), xt::range(t0, t0 + len), xt::all());
    m.contexts(zc, c_part, state);
    xt::view(c_stream, xt::all(), xt::range(t0, t0 + len), xt::all()) = c_part;
    t0 += len;
  }
  REQUIRE(t0 == z.shape()[1]);
  CHECK(c_stream == c_full);
}

TEST_CASE("model: learns a predictable synthetic sequence task; starts at log(N+1)") {
  tiny_model_f::options o;
  o.seed = 4;
  tiny_model_f m(o);
  adam<float> opt(m.parameters(), {.learning_rate = 3e-3});
  rng data(9);
  const auto first = m.compute_gradients(tone_batch(8, 512, data));
  // The presets' small prediction heads start every score near 0: loss = log(N + 1).
  CHECK(std::abs(first.loss - first.log_candidates) < 0.05 * first.log_candidates);
  REQUIRE(first.accuracy.size() == 3);
  double acc = 0;
  for (int step = 0; step < 300; ++step) {
    const auto r = m.train_step(tone_batch(8, 512, data), opt);
    acc = r.accuracy[0];
  }
  const auto last = m.evaluate(tone_batch(8, 512, data));
  CHECK(last.accuracy[0] > 3 * last.chance);
  CHECK(last.loss < 0.8 * first.loss);
  (void)acc;
}

TEST_CASE("model: audio fed in chunks through context_stream gives the contexts of one pass") {
  tiny_model_f m;
  const auto audio = random_audio<float>(2, 3000, 12);
  tensor3<float> z, c_full;
  m.encode(audio, z, c_full);
  // The receptive field of frame t (tiny encoder) and its look-ahead.
  CHECK(m.encoder().receptive_field(3) == std::pair<std::ptrdiff_t, std::ptrdiff_t>{80, 143});
  context_stream<tiny_model_f> stream(m);
  std::vector<tensor3<float>> parts;
  std::size_t s0 = 0;
  for (std::size_t len : {700u, 1u, 0u, 1500u, 333u, 466u}) {
    tensor2<float> chunk = xt::view(audio, xt::all(), xt::range(s0, s0 + len));
    s0 += len;
    parts.emplace_back();
    stream.push(chunk, parts.back());
  }
  REQUIRE(s0 == 3000);
  parts.emplace_back();
  stream.finish(parts.back());
  std::size_t t0 = 0;
  bool same = true;
  for (const auto& p : parts) {
    for (std::size_t t = 0; t < p.shape()[1]; ++t)
      for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t j = 0; j < p.shape()[2]; ++j) same = same && p(b, t, j) == c_full(b, t0 + t, j);
    t0 += p.shape()[1];
  }
  CHECK(t0 == c_full.shape()[1]);
  CHECK(same);
  CHECK(parts[0].shape()[1] > 0);  // frames are returned before the end of the stream
  tensor3<float> more;
  CHECK_THROWS_AS(stream.push(audio, more), error);
}

TEST_CASE("model: owns one flat value and one flat gradient buffer; cannot be copied or moved") {
  static_assert(!std::is_copy_constructible_v<tiny_model_f> && !std::is_move_constructible_v<tiny_model_f> &&
                !std::is_copy_assignable_v<tiny_model_f> && !std::is_move_assignable_v<tiny_model_f>);
  tiny_model_f m;
  const auto& params = m.parameters();
  REQUIRE(params.flat);
  std::size_t expected = 0;
  for (const auto& entry : params) {
    const auto& name = std::get<0>(entry);
    const auto& p = std::get<1>(entry);
    CAPTURE(name);
    // Each parameter is a slot of the flat buffers at the same offset in both, 64-byte aligned.
    CHECK(p->value.data() == params.flat.values + expected);
    CHECK(p->grad.data() == params.flat.grads + expected);
    CHECK(reinterpret_cast<std::uintptr_t>(p->value.data()) % 64 == 0);
    CHECK_FALSE(p->owns_memory());
    expected += (p->size() + parameter_alignment - 1) / parameter_alignment * parameter_alignment;
  }
  CHECK(params.flat.size == expected);
  CHECK(m.parameter_count() <= expected);
}

TEST_CASE("adam: one pass over a model's flat buffers equals the per-parameter update, bit for bit") {
  // Two identical models; one optimiser updates the flat buffers, the other each parameter on its own.
  tiny_model_f a, b;
  named_parameter_list<float> per_parameter = b.parameters();
  per_parameter.flat = {};
  adam<float> flat_opt(a.parameters(), {.learning_rate = 1e-2, .weight_decay = 0.1});
  adam<float> split_opt(per_parameter, {.learning_rate = 1e-2, .weight_decay = 0.1});
  const auto audio = random_audio<float>(2, 2000, 5);
  for (int s = 0; s < 3; ++s) {
    const auto ra = a.train_step(audio, flat_opt);
    const auto rb = b.train_step(audio, split_opt);
    CHECK(ra.loss == rb.loss);
  }
  for (std::size_t i = 0; i < a.parameters().size(); ++i) {
    CAPTURE(a.parameters()[i].first);
    CHECK(a.parameters()[i].second->value == b.parameters()[i].second->value);
  }
  std::vector<float> sa, sb;
  flat_opt.for_each_state(
      [&](const std::string&, const auto& t) { sa.insert(sa.end(), t.begin(), t.end()); });
  split_opt.for_each_state(
      [&](const std::string&, const auto& t) { sb.insert(sb.end(), t.begin(), t.end()); });
  CHECK(sa == sb);
}
