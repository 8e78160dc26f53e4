// The text model (paper section 3.3) on the shared model core: sizes checked, a tiny model learns
// to predict the next sentences of a synthetic "document" language, cpc::train drives it, and the
// reference backend gives the cpu backend's loss.
#include <doctest/doctest.h>

#include <cpc/model/text_model.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/optim/schedule.hpp>
#include <cpc/train/trainer.hpp>

#include <sstream>

using namespace cpc;

namespace {
using tiny = presets::text_tiny;

// Rows of 5 sentences; sentence s of a row is tokens {a + s, a + s + 10, a + s + 20} (mod 45, + 1):
// every sentence predicts the next. Row 1 has 3 real sentences.
text_batch synthetic_batch(rng& gen, std::size_t rows = 8) {
  text_batch b;
  b.ids = xt::zeros<std::int32_t>({rows, std::size_t{5}, std::size_t{4}});
  b.info.lengths.assign(rows, 5);
  b.info.lengths[1] = 3;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t a = gen.uniform_int(45);
    for (std::size_t s = 0; s < b.info.lengths[r]; ++s)
      for (std::size_t t = 0; t < 3; ++t)
        b.ids(r, s, t) = static_cast<std::int32_t>((a + s + 10 * t) % 45 + 1);
  }
  return b;
}
}  // namespace

TEST_CASE("text_model: parameter names, count and size checks") {
  cpc_text_model<tiny> m;
  std::vector<std::string> names;
  for (const auto& [name, p] : m.parameters()) names.push_back(name);
  CHECK(names.front() == "encoder.embedding.weight");
  CHECK(names[1] == "encoder.conv.weight");
  // embedding 50 x 8, conv 16 x 8 x 3 + 16, GRU (3 x 8) x (16 + 8) + 2 x 24, K = 2 heads 16 x 8
  CHECK(m.parameter_count() == 400 + 400 + 576 + 48 + 256);
  cpc_text_model<tiny>::options o;
  o.autoregressor.input_size = 12;
  CHECK_THROWS_AS(cpc_text_model<tiny>{o}, config_error);
  text_batch empty;
  empty.ids = xt::zeros<std::int32_t>({std::size_t{0}, std::size_t{3}, std::size_t{2}});
  CHECK_THROWS_AS(m.compute_gradients(empty), shape_error);
}

TEST_CASE("text_model: a tiny model learns next-sentence prediction through cpc::train") {
  cpc_text_model<tiny>::options o;
  o.seed = 3;
  cpc_text_model<tiny> m(o);
  adam<float> opt(m.parameters(), {.learning_rate = 3e-3});
  rng data(11);
  const auto first = m.evaluate(synthetic_batch(data, 32));
  CHECK(first.loss == doctest::Approx(std::log(5.0)).epsilon(0.05));  // chance: log(N + 1), small heads
  std::ostringstream log;
  auto source = [&](text_batch& b) { b = synthetic_batch(data); };
  const auto s = train(m, opt, constant_lr{3e-3}, source, {.max_steps = 300, .progress = false, .out = &log});
  CHECK(s.steps_run == 300);
  rng test(99);
  const auto after = m.evaluate(synthetic_batch(test, 32));
  CHECK(after.loss < 0.5 * first.loss);
  CHECK(after.accuracy[0] > 0.8);
}

TEST_CASE("text_model: reference backend gives the cpu backend's loss and gradients") {
  using cpu_model = text_model<tiny, sentence_encoder, gru, info_nce, float, cpu>;
  using reference_model = text_model<tiny, sentence_encoder, gru, info_nce, float, reference>;
  cpu_model::options oa;
  reference_model::options ob;
  oa.seed = ob.seed = 5;
  cpu_model a(oa);
  reference_model b(ob);
  rng g1(1), g2(1);
  const auto ra = a.compute_gradients(synthetic_batch(g1));
  const auto rb = b.compute_gradients(synthetic_batch(g2));
  CHECK(ra.loss == doctest::Approx(rb.loss).epsilon(1e-4));
  const auto& pa = a.parameters();
  const auto& pb = b.parameters();
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    double num = 0, den = 1e-12;
    for (std::size_t j = 0; j < pa[i].second->size(); ++j) {
      num = std::max(num,
                     std::abs(double(pa[i].second->grad.data()[j]) - double(pb[i].second->grad.data()[j])));
      den = std::max(den, std::abs(double(pb[i].second->grad.data()[j])));
    }
    CHECK(num / den < 1e-3);
  }
}
