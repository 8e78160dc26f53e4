#include <doctest/doctest.h>

#include <cpc/loss/info_nce.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

// Plain reference: loops over every (b, t, k) term and its candidates [positive, negatives...]
// read back from the index tensor; loss and accuracy over that same candidate axis.
struct reference_result {
  std::vector<double> loss, accuracy;
  std::vector<std::size_t> terms;
};

template <class T, class Backend>
reference_result plain_reference(info_nce<T, Backend>& m, const tensor3<T>& z, const tensor3<T>& c,
                                 const std::vector<std::size_t>& len, const tensor<std::int32_t, 4>& neg) {
  const auto& o = m.config();
  const std::size_t B = z.shape()[0], Tn = z.shape()[1], D = o.latent_dim, C = o.context_dim;
  const double s = m.score_multiplier();
  reference_result r;
  for (std::size_t k = 1; k <= o.steps; ++k) {
    auto& w = m.head(k - 1).weight().value;
    double total = 0;
    std::size_t hits = 0, terms = 0;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t + k < len[b]; ++t) {
        std::vector<double> p(D, 0.0), logits;
        for (std::size_t i = 0; i < D; ++i)
          for (std::size_t j = 0; j < C; ++j) p[i] += double(w(i, j)) * double(c(b, t, j));
        std::vector<std::size_t> cand{b * Tn + t + k};
        for (std::size_t n = 0; n < o.negatives; ++n) cand.push_back(std::size_t(neg(k - 1, b, t, n)));
        for (auto f : cand) {
          double d = 0;
          for (std::size_t i = 0; i < D; ++i) d += p[i] * double(z(f / Tn, f % Tn, i));
          logits.push_back(s * d);
        }
        double mx = logits[0], sum = 0;
        for (double l : logits) mx = std::max(mx, l);
        for (double l : logits) sum += std::exp(l - mx);
        total += mx + std::log(sum) - logits[0];
        bool hit = true;
        for (std::size_t j = 1; j < logits.size(); ++j) hit = hit && logits[0] > logits[j];
        hits += hit;
        ++terms;
      }
    r.loss.push_back(terms ? total / double(terms) : 0.0);
    r.accuracy.push_back(terms ? double(hits) / double(terms) : 0.0);
    r.terms.push_back(terms);
  }
  return r;
}

template <class T>
tensor3<T> random3(std::size_t a, std::size_t b, std::size_t c, rng& gen, double scale = 1.0) {
  tensor3<T> x = xt::zeros<T>({a, b, c});
  fill_uniform(x, gen, scale);
  return x;
}

}  // namespace

TEST_CASE_TEMPLATE(
    "info_nce: matches PyTorch golden values with fixed negatives (loss, accuracy, dz, dc, dW, db)", Backend,
    CPC_TEST_BACKENDS) {
  auto g = read_golden("info_nce.txt");
  rng gen(0);
  info_nce<float, Backend> m({.context_dim = 4,
                              .latent_dim = 5,
                              .steps = 3,
                              .negatives = 4,
                              .predictor_bias = true,
                              .scale = score_scale::inv_sqrt_dim},
                             gen);
  for (std::size_t k = 0; k < 3; ++k) {
    assign(m.head(k).weight().value, g["weight" + std::to_string(k)]);
    assign(m.head(k).bias().value, g["bias" + std::to_string(k)]);
  }
  tensor3<float> z, c, dz, dc;
  assign(z, g["z"]);
  assign(c, g["c"]);
  tensor<std::int32_t, 4> neg;
  assign(neg, g["negatives"]);
  batch_info info;
  for (double l : g["lengths"]) info.lengths.push_back(std::size_t(l));
  const auto r = m.compute(z, c, info, neg, &dz, &dc);
  CHECK(std::abs(r.loss - g["loss"](0)) < 1e-4 * std::abs(g["loss"](0)));
  for (std::size_t k = 0; k < 3; ++k) {
    CHECK(std::abs(r.loss_per_step[k] - g["loss_per_step"](k)) < 1e-4 * std::abs(g["loss_per_step"](k)));
    CHECK(r.accuracy[k] == doctest::Approx(g["accuracy"](k)).epsilon(1e-12));
    CHECK(double(r.terms[k]) == g["terms"](k));
    CHECK(max_relative_error(m.head(k).weight().grad, g["dweight" + std::to_string(k)]) < 1e-4);
    CHECK(max_relative_error(m.head(k).bias().grad, g["dbias" + std::to_string(k)]) < 1e-4);
  }
  CHECK(max_relative_error(dz, g["dz"]) < 1e-4);
  CHECK(max_relative_error(dc, g["dc"]) < 1e-4);
}

TEST_CASE_TEMPLATE("info_nce: finite differences in double through z, c, W_k and b_k", Backend,
                   CPC_TEST_BACKENDS) {
  struct variant {
    std::string name;
    bool bias;
    score_scale scale;
    step_reduction reduction;
    negative_sharing sharing;
    std::vector<std::size_t> lengths;
  };
  const std::vector<variant> variants{
      {"paper dot, mean", false, score_scale::dot, step_reduction::mean, negative_sharing::per_step, {}},
      {"bias, 1/D, sum, padded",
       true,
       score_scale::inv_dim,
       step_reduction::sum,
       negative_sharing::per_step,
       {6, 4}},
      {"temperature, shared",
       true,
       score_scale::temperature,
       step_reduction::mean,
       negative_sharing::shared,
       {5, 6}}};
  for (const auto& v : variants) {
    CAPTURE(v.name);
    rng gen(7);
    info_nce<double, Backend> m({.context_dim = 3,
                                 .latent_dim = 4,
                                 .steps = 2,
                                 .negatives = 3,
                                 .predictor_bias = v.bias,
                                 .scale = v.scale,
                                 .temperature = 0.5,
                                 .init = predictor_init::normal,
                                 .sharing = v.sharing,
                                 .reduction = v.reduction},
                                gen);
    if (v.bias)
      for (std::size_t k = 0; k < 2; ++k) fill_uniform(m.head(k).bias().value, gen);
    auto z = random3<double>(2, 6, 4, gen), c = random3<double>(2, 6, 3, gen);
    const batch_info info{.lengths = v.lengths};
    tensor3<double> dz, dc;
    m.compute(z, c, info, gen, &dz, &dc);
    const auto neg = m.sampler().indices();
    auto loss = [&] { return m.compute(z, c, info, neg, nullptr, nullptr).loss; };
    CHECK(gradient_error(loss, z.data(), z.size(), dz.data()) < 1e-6);
    CHECK(gradient_error(loss, c.data(), c.size(), dc.data()) < 1e-6);
    m.for_each_parameter([&](const std::string& name, parameter<double>& p) {
      CAPTURE(name);
      CHECK(gradient_error(loss, p.value.data(), p.size(), p.grad.data()) < 1e-6);
    });
  }
}

TEST_CASE_TEMPLATE(
    "info_nce: loss and accuracy equal a plain per-term reference over the candidate axis, every term "
    "counted",
    Backend, CPC_TEST_BACKENDS) {
  for (auto policy : {negative_policy::batch, negative_policy::same_sequence,
                      negative_policy::other_sequences, negative_policy::same_speaker}) {
    CAPTURE(to_string(policy));
    rng gen(3);
    info_nce<double, Backend> m({.context_dim = 6,
                                 .latent_dim = 8,
                                 .steps = 4,
                                 .negatives = 7,
                                 .init = predictor_init::normal,
                                 .policy = policy},
                                gen);
    const std::size_t B = 3, Tn = 10;
    auto z = random3<double>(B, Tn, 8, gen), c = random3<double>(B, Tn, 6, gen);
    for (const batch_info& info : {batch_info{.speakers = {1, 2, 1}}, batch_info{{10, 7, 9}, {1, 2, 1}}}) {
      const auto len = info.lengths.empty() ? std::vector<std::size_t>(B, Tn) : info.lengths;
      const auto r = m.compute(z, c, info, gen, nullptr, nullptr);
      const auto ref = plain_reference(m, z, c, len, m.sampler().indices());
      REQUIRE(r.loss_per_step.size() == 4);
      REQUIRE(r.accuracy.size() == 4);
      double mean = 0;
      for (std::size_t k = 0; k < 4; ++k) {
        CHECK(r.loss_per_step[k] == doctest::Approx(ref.loss[k]).epsilon(1e-12));
        CHECK(r.accuracy[k] == doctest::Approx(ref.accuracy[k]).epsilon(1e-12));
        CHECK(r.terms[k] == ref.terms[k]);
        CHECK(r.accuracy[k] >= 0.0);
        CHECK(r.accuracy[k] <= 1.0);
        if (info.lengths.empty()) CHECK(r.terms[k] == B * (Tn - k - 1));  // B * (T - k) for step k
        mean += r.loss_per_step[k] / 4;
      }
      CHECK(r.loss == doctest::Approx(mean).epsilon(1e-12));
      CHECK(r.chance == doctest::Approx(1.0 / 8));
      CHECK(r.log_candidates == doctest::Approx(std::log(8.0)));
    }
  }
}

TEST_CASE_TEMPLATE("info_nce: a random model on near-constant z starts at log(N + 1), accuracy near chance",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(1);
  info_nce<float, Backend> m({}, gen);  // paper sizes: 256 -> 512, K = 12, N = 128, PyTorch default heads
  tensor3<float> z = xt::ones<float>({2, 48, 512}), noise = random3<float>(2, 48, 512, gen, 1e-3);
  z += noise;
  auto c = random3<float>(2, 48, 256, gen);
  const auto r = m.compute(z, c, {}, gen, nullptr, nullptr);
  CHECK(std::abs(r.loss - std::log(129.0)) < 0.05 * std::log(129.0));
  for (std::size_t k = 0; k < 12; ++k)
    CHECK(std::abs(r.loss_per_step[k] - std::log(129.0)) < 0.05 * std::log(129.0));
  CHECK(r.chance == doctest::Approx(1.0 / 129));

  info_nce<float, Backend> sum({.reduction = step_reduction::sum}, gen);
  const auto rs = sum.compute(z, c, {}, gen, nullptr, nullptr);
  CHECK(std::abs(rs.loss - 12 * std::log(129.0)) < 0.05 * 12 * std::log(129.0));
}

TEST_CASE_TEMPLATE("info_nce: the target of (t, k) is exactly z_{t+k}", Backend, CPC_TEST_BACKENDS) {
  // z_{b,t} = e_{bT+t}; c_{b,t} = e_{bT+t}; W_k maps e_{bT+t} -> 1e4 e_{bT+t+shift}. With shift = k only
  // the true target scores 1e4: accuracy 1, loss ~0. With shift = k + 1 (an off-by-one) accuracy is 0.
  const std::size_t B = 2, Tn = 8, K = 3, F = B * Tn;
  tensor3<double> z = xt::zeros<double>({B, Tn, F});
  for (std::size_t f = 0; f < F; ++f) z(f / Tn, f % Tn, f) = 1.0;
  const tensor3<double> c = z;
  for (int off : {0, 1}) {
    rng gen(4);
    info_nce<double, Backend> m({.context_dim = F, .latent_dim = F, .steps = K, .negatives = 5}, gen);
    for (std::size_t k = 1; k <= K; ++k) {
      auto& w = m.head(k - 1).weight().value;
      w.fill(0.0);
      for (std::size_t f = 0; f + k + off < F; ++f)
        w(f + k + off, f) = 1e4;  // logits of 1e4: softmax-then-log would give NaN
    }
    const auto r = m.compute(z, c, {}, gen, nullptr, nullptr);
    CHECK(std::isfinite(r.loss));
    for (std::size_t k = 0; k < K; ++k) {
      CHECK(r.accuracy[k] == (off == 0 ? 1.0 : 0.0));
      if (off == 0) CHECK(r.loss_per_step[k] < 1e-15);
      if (off == 1) CHECK(r.loss_per_step[k] >= std::log(6.0) - 1e-12);  // no better than chance
    }
  }
}

TEST_CASE_TEMPLATE(
    "info_nce: padded frames carry no loss and no gradient; padded batch = per-item runs (same_sequence)",
    Backend, CPC_TEST_BACKENDS) {
  rng gen(9);
  const std::size_t Tn = 9, K = 3, N = 5;
  info_nce<double, Backend> m({.context_dim = 3,
                               .latent_dim = 4,
                               .steps = K,
                               .negatives = N,
                               .init = predictor_init::normal,
                               .policy = negative_policy::same_sequence},
                              gen);
  auto z = random3<double>(2, Tn, 4, gen), c = random3<double>(2, Tn, 3, gen);
  const batch_info info{.lengths = {6, 9}};
  for (std::size_t t = 6; t < Tn; ++t)
    for (std::size_t i = 0; i < 4; ++i) z(0, t, i) = std::nan("");  // never read
  for (std::size_t t = 6; t < Tn; ++t)
    for (std::size_t i = 0; i < 3; ++i) c(0, t, i) = 1e6;  // read by the GEMM, never by a term
  tensor3<double> dz, dc;
  const auto r = m.compute(z, c, info, gen, &dz, &dc);
  const auto neg = m.sampler().indices();
  CHECK(std::isfinite(r.loss));
  for (std::size_t t = 6; t < Tn; ++t)
    for (std::size_t i = 0; i < 4; ++i) CHECK(dz(0, t, i) == 0.0);
  for (std::size_t t = 5; t < Tn; ++t)  // the last valid c has no future either
    for (std::size_t i = 0; i < 3; ++i) CHECK(dc(0, t, i) == 0.0);
  // Each item alone, with the same negatives re-indexed to the single-item layout.
  std::vector<double> summed(K, 0.0);
  std::vector<std::size_t> terms(K, 0);
  for (std::size_t b = 0; b < 2; ++b) {
    const std::size_t Tb = info.lengths[b];
    tensor3<double> zb = xt::view(z, xt::range(b, b + 1), xt::range(0, Tb), xt::all());
    tensor3<double> cb = xt::view(c, xt::range(b, b + 1), xt::range(0, Tb), xt::all());
    tensor<std::int32_t, 4> nb = xt::zeros<std::int32_t>({K, std::size_t(1), Tb, N});
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t t = 0; t < Tb; ++t)
        for (std::size_t n = 0; n < N; ++n) {
          const auto v = neg(k, b, t, n);
          nb(k, 0, t, n) = v < 0 ? 0 : v % std::int32_t(Tn);
        }
    const auto rb = m.compute(zb, cb, {}, nb, nullptr, nullptr);
    for (std::size_t k = 0; k < K; ++k) {
      summed[k] += rb.loss_per_step[k] * double(rb.terms[k]);
      terms[k] += rb.terms[k];
    }
  }
  for (std::size_t k = 0; k < K; ++k) {
    CHECK(terms[k] == r.terms[k]);
    CHECK(r.loss_per_step[k] == doctest::Approx(summed[k] / double(terms[k])).epsilon(1e-12));
  }
}

TEST_CASE_TEMPLATE(
    "info_nce: no batch mixing - item b's loss and gradient equal item b alone; permutation "
    "(same_sequence)",
    Backend, CPC_TEST_BACKENDS) {
  rng gen(12);
  const std::size_t B = 3, Tn = 7, K = 2, N = 4;
  info_nce<double, Backend> m({.context_dim = 3,
                               .latent_dim = 5,
                               .steps = K,
                               .negatives = N,
                               .init = predictor_init::normal,
                               .policy = negative_policy::same_sequence},
                              gen);
  auto z = random3<double>(B, Tn, 5, gen), c = random3<double>(B, Tn, 3, gen);
  tensor3<double> dz, dc;
  const auto r = m.compute(z, c, {}, gen, &dz, &dc);
  const auto neg = m.sampler().indices();
  std::vector<double> loss_sum(K, 0.0);
  for (std::size_t b = 0; b < B; ++b) {
    tensor3<double> zb = xt::view(z, xt::range(b, b + 1), xt::all(), xt::all());
    tensor3<double> cb = xt::view(c, xt::range(b, b + 1), xt::all(), xt::all());
    tensor<std::int32_t, 4> nb = xt::view(neg, xt::all(), xt::range(b, b + 1), xt::all(), xt::all());
    for (auto& v : nb) v = v < 0 ? 0 : v - std::int32_t(b * Tn);
    tensor3<double> dzb, dcb;
    const auto rb = m.compute(zb, cb, {}, nb, &dzb, &dcb);
    for (std::size_t k = 0; k < K; ++k) loss_sum[k] += rb.loss_per_step[k] / B;
    // Equal lengths: every step has B times the terms, so the batch gradient is the item's / B.
    CHECK(xt::allclose(xt::view(dz, b) * double(B), xt::view(dzb, 0), 1e-10, 1e-12));
    CHECK(xt::allclose(xt::view(dc, b) * double(B), xt::view(dcb, 0), 1e-10, 1e-12));
  }
  for (std::size_t k = 0; k < K; ++k)
    CHECK(r.loss_per_step[k] == doctest::Approx(loss_sum[k]).epsilon(1e-12));
  // Reversed batch with re-mapped negatives: same loss, reversed gradients.
  tensor3<double> zp = z, cp = c;
  tensor<std::int32_t, 4> np = neg;
  for (std::size_t b = 0; b < B; ++b) {
    xt::view(zp, b) = xt::view(z, B - 1 - b);
    xt::view(cp, b) = xt::view(c, B - 1 - b);
    xt::view(np, xt::all(), b) = xt::view(neg, xt::all(), B - 1 - b);
  }
  for (auto& v : np) v = std::int32_t((B - 1 - std::size_t(v) / Tn) * Tn + std::size_t(v) % Tn);
  tensor3<double> dzp, dcp;
  const auto rp = m.compute(zp, cp, {}, np, &dzp, &dcp);
  CHECK(rp.loss == doctest::Approx(r.loss).epsilon(1e-12));
  for (std::size_t b = 0; b < B; ++b)
    CHECK(xt::allclose(xt::view(dzp, b), xt::view(dz, B - 1 - b), 1e-10, 1e-12));
}

TEST_CASE("info_nce: deterministic for a seed and for any thread count (cpu)") {
  auto run = [](std::size_t threads) {
    set_num_threads(threads);
    rng gen(21);
    info_nce<float> m({.context_dim = 16, .latent_dim = 32, .steps = 5, .negatives = 20}, gen);
    auto z = random3<float>(4, 40, 32, gen), c = random3<float>(4, 40, 16, gen);
    tensor3<float> dz, dc;
    const auto r = m.compute(z, c, {}, gen, &dz, &dc);
    set_num_threads(2);
    return std::make_tuple(r.loss, dz, dc, tensor2<float>(m.head(4).weight().grad));
  };
  CHECK(run(1) == run(2));
}

TEST_CASE_TEMPLATE("info_nce: gradients accumulate in the heads; none without dz and dc", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(1);
  info_nce<double, Backend> m({.context_dim = 3, .latent_dim = 4, .steps = 2, .negatives = 3}, gen);
  auto z = random3<double>(2, 5, 4, gen), c = random3<double>(2, 5, 3, gen);
  tensor3<double> dz, dc;
  m.compute(z, c, {}, gen, &dz, &dc);
  const array<double> once = m.head(1).weight().grad;
  CHECK(xt::amax(xt::abs(once))() > 0);
  m.compute(z, c, {}, m.sampler().indices(), &dz, &dc);
  CHECK(xt::allclose(m.head(1).weight().grad, 2.0 * once));
  m.compute(z, c, {}, m.sampler().indices(), nullptr, nullptr);  // no gradient requested: untouched
  CHECK(xt::allclose(m.head(1).weight().grad, 2.0 * once));
}

TEST_CASE_TEMPLATE("info_nce: parameter names, shapes and initialisations", Backend, CPC_TEST_BACKENDS) {
  rng gen(8);
  info_nce<double, Backend> m({.context_dim = 64, .latent_dim = 100, .steps = 3, .predictor_bias = true},
                              gen);
  std::vector<std::string> names;
  m.for_each_parameter(
      [&](const std::string& n, parameter<double>& p) {
        names.push_back(n);
        CHECK(p.value.shape()[0] == 100);
      },
      "loss");
  CHECK(names == std::vector<std::string>{"loss.predictor.0.weight", "loss.predictor.0.bias",
                                          "loss.predictor.1.weight", "loss.predictor.1.bias",
                                          "loss.predictor.2.weight", "loss.predictor.2.bias"});
  CHECK(m.head(0).weight().value.shape()[1] == 64);
  CHECK(xt::amax(xt::abs(m.head(2).weight().value))() <= 1.0 / 8);
  info_nce<double, Backend> n(
      {.context_dim = 64, .latent_dim = 100, .steps = 1, .init = predictor_init::normal, .init_scale = 2.0},
      gen);
  const auto& w = n.head(0).weight().value;
  const double sd = std::sqrt(xt::mean(w * w)());
  CHECK(sd == doctest::Approx(2.0).epsilon(0.05));
}

TEST_CASE_TEMPLATE("info_nce: bad inputs throw typed errors naming the problem", Backend, CPC_TEST_BACKENDS) {
  rng gen(1);
  info_nce<float, Backend> m({.context_dim = 3, .latent_dim = 4, .steps = 2, .negatives = 3}, gen);
  tensor3<float> z = xt::zeros<float>({2, 5, 4}), c = xt::zeros<float>({2, 5, 3}),
                 bad = xt::zeros<float>({2, 4, 3});
  CHECK_THROWS_WITH_AS(m.compute(z, bad, {}, gen, nullptr, nullptr),
                       "info_nce c: expected [2, 5, 3], got [2, 4, 3]", shape_error);
  CHECK_THROWS_WITH_AS(m.compute(bad, c, {}, gen, nullptr, nullptr),
                       "info_nce z: expected [*, *, 4], got [2, 4, 3]", shape_error);
  m.compute(z, c, {.lengths = {5, 3}}, gen, nullptr, nullptr);
  auto neg = m.sampler().indices();
  neg(1, 0, 2, 1) = 9;  // frame (1, 4): padding once item 1 has length 3
  CHECK_THROWS_WITH_AS(
      m.compute(z, c, {.lengths = {5, 3}}, neg, nullptr, nullptr),
      "info_nce: negative 1 of anchor (b=0, t=2, k=2) is frame 9, not a valid frame of the batch",
      config_error);
  CHECK_THROWS_WITH_AS(m.compute(z, c, {.lengths = {1, 1}}, gen, nullptr, nullptr),
                       "info_nce: no (b, t, k) term with t + k < length; items need at least 2 valid frames",
                       config_error);
  using loss_type = info_nce<float, Backend>;
  CHECK_THROWS_WITH_AS(loss_type({.scale = score_scale::temperature, .temperature = 0.0}, gen),
                       "info_nce: expected temperature > 0, got 0.000000", config_error);
  CHECK_THROWS_WITH_AS(loss_type({.context_dim = 0}, gen),
                       "info_nce: expected context_dim > 0 and latent_dim > 0", config_error);
}

TEST_CASE(
    "info_nce: cpu equals reference (1e-5) - loss, accuracy, dz, dc and head gradients - on odd sizes, "
    "padding, one item, every option") {
  struct variant {
    std::string name;
    std::size_t batch, time, context, latent, steps, negatives;
    info_nce_options extra;
    std::vector<std::size_t> lengths;
  };
  const std::vector<variant> variants{
      {"paper-like, dot, mean", 3, 40, 24, 64, 5, 20, {}, {}},
      {"odd D and N, bias, 1/sqrt(D), sum, padded",
       2,
       13,
       5,
       37,
       3,
       7,
       {.predictor_bias = true, .scale = score_scale::inv_sqrt_dim, .reduction = step_reduction::sum},
       {13, 6}},
      {"one item, D = 1, N = 1, temperature, shared",
       1,
       9,
       3,
       1,
       4,
       1,
       {.scale = score_scale::temperature, .temperature = 0.3, .sharing = negative_sharing::shared},
       {}},
      {"same_sequence, 1/D, items too short for some steps",
       4,
       8,
       7,
       16,
       4,
       5,
       {.scale = score_scale::inv_dim, .policy = negative_policy::same_sequence},
       {8, 2, 5, 3}}};
  for (const auto& v : variants) {
    CAPTURE(v.name);
    info_nce_options opt = v.extra;
    opt.context_dim = v.context;
    opt.latent_dim = v.latent;
    opt.steps = v.steps;
    opt.negatives = v.negatives;
    opt.init = predictor_init::normal;
    opt.init_scale = 0.5;
    rng g1(31), g2(31);
    info_nce<float, cpu> a(opt, g1);
    info_nce<float, reference> b(opt, g2);
    rng data(5);
    auto z = random3<float>(v.batch, v.time, v.latent, data),
         c = random3<float>(v.batch, v.time, v.context, data);
    const batch_info info{.lengths = v.lengths};
    tensor3<float> dza, dca;
    const auto ra = a.compute(z, c, info, data, &dza, &dca);
    const auto& neg = a.sampler().indices();
    // Outputs pre-filled with NaN: every element must be written (zero on padding).
    tensor3<float> dzb = xt::zeros<float>(z.shape()), dcb = xt::zeros<float>(c.shape());
    dzb.fill(std::nanf(""));
    dcb.fill(std::nanf(""));
    const auto rb = b.compute(z, c, info, neg, &dzb, &dcb);
    CHECK(std::abs(ra.loss - rb.loss) <= 1e-5 * std::abs(rb.loss));
    REQUIRE(ra.loss_per_step.size() == v.steps);
    for (std::size_t k = 0; k < v.steps; ++k) {
      CAPTURE(k);
      CHECK(std::abs(ra.loss_per_step[k] - rb.loss_per_step[k]) <= 1e-5 * std::abs(rb.loss_per_step[k]));
      CHECK(ra.accuracy[k] == rb.accuracy[k]);
      CHECK(ra.terms[k] == rb.terms[k]);
    }
    CHECK(scaled_max_error(dza, dzb) < 1e-5);
    CHECK(scaled_max_error(dca, dcb) < 1e-5);
    auto pa = named_parameters<float>(a), pb = named_parameters<float>(b);
    REQUIRE(pa.size() == pb.size());
    REQUIRE(pa.size() == v.steps * (opt.predictor_bias ? 2 : 1));
    for (std::size_t i = 0; i < pa.size(); ++i) {
      CAPTURE(pa[i].first);
      CHECK(scaled_max_error(pa[i].second->grad, pb[i].second->grad) < 1e-5);
    }
  }
}
