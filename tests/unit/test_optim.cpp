#include <doctest/doctest.h>

#include <cpc/layers/linear.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/optim/clip.hpp>
#include <cpc/optim/schedule.hpp>
#include <cpc/optim/sgd.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <thread>

#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

/// The two parameters of tests/golden/optim.txt: w [3, 4] and b [4].
template <class T>
struct golden_params {
  std::map<std::string, array<double>> g = read_golden("optim.txt");
  parameter<T> w{{3, 4}}, b{{4}};
  golden_params() {
    assign(w.value, g["w0"]);
    assign(b.value, g["b0"]);
  }
  named_parameter_list<T> list() { return {{"w", &w}, {"b", &b}}; }
  void set_grads(int s) {
    assign(w.grad, g["g" + std::to_string(s) + ".w"]);
    assign(b.grad, g["g" + std::to_string(s) + ".b"]);
  }
  /// Runs the golden's three steps; `lrs` (if not empty) sets the learning rate before each.
  template <class Opt>
  void run(Opt& opt, std::vector<double> lrs = {}) {
    for (int s = 0; s < 3; ++s) {
      if (!lrs.empty()) opt.set_learning_rate(lrs[s]);
      set_grads(s);
      opt.step();
    }
  }
  double error(const std::string& tag) {
    return std::max(max_relative_error(w.value, g[tag + ".w"]), max_relative_error(b.value, g[tag + ".b"]));
  }
  template <class Opt>
  double state_error(Opt& opt, const std::string& tag, const std::string& key) {
    double e = 0;
    int seen = 0;
    opt.for_each_state([&](const std::string& name, auto& t) {
      for (const char* p : {"w", "b"})
        if (name.ends_with("." + key + "." + p)) {
          e = std::max(e, max_relative_error(t, g[tag + "." + key + "." + p]));
          ++seen;
        }
    });
    CHECK(seen == 2);
    return e;
  }
};

template <class T, class Backend>
void check_adam_golden(double tol) {
  {
    golden_params<T> p;
    adam<T, Backend> opt(p.list(), {.learning_rate = 1e-2});
    p.run(opt);
    CHECK(opt.steps() == 3);
    CHECK(p.error("adam_default") < tol);
    CHECK(p.state_error(opt, "adam_default", "exp_avg") < tol);
    CHECK(p.state_error(opt, "adam_default", "exp_avg_sq") < tol);
  }
  {
    golden_params<T> p;
    adam<T, Backend> opt(
        p.list(), {.learning_rate = 1e-2, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.1});
    p.run(opt, {0.01, 0.03, 0.005});
    CHECK(opt.learning_rate() == 0.005);
    CHECK(p.error("adam_decay") < tol);
    CHECK(p.state_error(opt, "adam_decay", "exp_avg") < tol);
    CHECK(p.state_error(opt, "adam_decay", "exp_avg_sq") < tol);
  }
}

template <class T, class Backend>
void check_sgd_golden(double tol) {
  {
    golden_params<T> p;
    sgd<T, Backend> opt(p.list(), {.learning_rate = 0.1});
    p.run(opt);
    CHECK(p.error("sgd_plain") < tol);
    int states = 0;
    opt.for_each_state([&](const std::string&, auto&) { ++states; });
    CHECK(states == 0);
  }
  {
    golden_params<T> p;
    sgd<T, Backend> opt(p.list(), {.learning_rate = 0.1, .momentum = 0.9});
    p.run(opt);
    CHECK(p.error("sgd_momentum") < tol);
    CHECK(p.state_error(opt, "sgd_momentum", "momentum_buffer") < tol);
  }
  {
    golden_params<T> p;
    sgd<T, Backend> opt(p.list(),
                        {.learning_rate = 0.05, .momentum = 0.8, .dampening = 0.1, .weight_decay = 0.01});
    p.run(opt);
    CHECK(p.error("sgd_damp_decay") < tol);
    CHECK(p.state_error(opt, "sgd_damp_decay", "momentum_buffer") < tol);
  }
  {
    golden_params<T> p;
    sgd<T, Backend> opt(p.list(),
                        {.learning_rate = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01});
    p.run(opt);
    CHECK(p.error("sgd_nesterov") < tol);
    CHECK(p.state_error(opt, "sgd_nesterov", "momentum_buffer") < tol);
  }
}

/// A parameter larger than several chunks, so updates cross chunk boundaries.
template <class T>
parameter<T> big_parameter(std::uint64_t seed, std::size_t n = 3 * optimizer_chunk_size + 123) {
  parameter<T> p({n});
  rng gen(seed);
  fill_uniform(p.value, gen);
  fill_uniform(p.grad, gen);
  return p;
}

}  // namespace

TEST_CASE_TEMPLATE("adam: matches torch.optim.Adam golden values (float, and double)", Backend, cpc::cpu,
                   cpc::reference) {
  check_adam_golden<float, Backend>(1e-5);
  check_adam_golden<double, Backend>(1e-12);
}

TEST_CASE_TEMPLATE(
    "sgd: matches torch.optim.SGD golden values with momentum, dampening, Nesterov, weight decay", Backend,
    cpc::cpu, cpc::reference) {
  check_sgd_golden<float, Backend>(1e-5);
  check_sgd_golden<double, Backend>(1e-12);
}

TEST_CASE("adam: every element of a multi-chunk parameter gets the scalar update") {
  auto p = big_parameter<double>(7);
  const array<double> v0 = p.value;
  named_parameter_list<double> list{{"p", &p}};
  adam<double> opt(list, {.learning_rate = 0.1});
  opt.step();
  // First Adam step: m = 0.1 g, v = 0.001 g^2, update = lr * g / (|g| + eps * sqrt(0.001) / ...) ~ lr
  // sign(g).
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double g = p.grad.data()[i];
    const double m = 0.1 * g / 0.1, v = 0.001 * g * g / 0.001;
    const double expected = v0.data()[i] - 0.1 * m / (std::sqrt(v) + 1e-8);
    if (std::abs(p.value.data()[i] - expected) > 1e-12) ++wrong;
  }
  CHECK(wrong == 0);
}

TEST_CASE("optimisers and clipping: identical bits for 1 and 2 threads") {
  auto run = [](std::size_t threads) {
    set_num_threads(threads);
    auto p = big_parameter<float>(11);
    auto q = big_parameter<float>(12, 1000);
    named_parameter_list<float> list{{"p", &p}, {"q", &q}};
    adam<float> a(list, {.learning_rate = 1e-3, .weight_decay = 0.01});
    sgd<float> s(list, {.learning_rate = 1e-2, .momentum = 0.9, .nesterov = true});
    double norms = 0;
    for (int i = 0; i < 3; ++i) {
      norms += clip_grad_norm(list, 50.0);
      a.step();
      s.step();
    }
    std::vector<float> out(p.value.begin(), p.value.end());
    out.insert(out.end(), q.value.begin(), q.value.end());
    out.push_back(static_cast<float>(norms));
    return out;
  };
  const auto one = run(1), two = run(2);
  set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
  REQUIRE(one.size() == two.size());
  CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
}

TEST_CASE("adam: state saved through for_each_state and restored continues identically") {
  rng gen(3);
  linear<float> layer({.in_features = 5, .out_features = 3}, gen);
  auto params = named_parameters<float>(layer);
  adam opt{params, {.learning_rate = 1e-2}};  // class template argument deduction
  std::vector<std::string> names;
  opt.for_each_state([&](const std::string& name, const auto&) { names.push_back(name); });
  CHECK(names == std::vector<std::string>{"adam.exp_avg.weight", "adam.exp_avg.bias",
                                          "adam.exp_avg_sq.weight", "adam.exp_avg_sq.bias"});
  auto grads = [&](std::uint64_t seed) {
    rng g(seed);
    fill_uniform(layer.weight().grad, g);
    fill_uniform(layer.bias().grad, g);
  };
  grads(1);
  opt.step();
  grads(2);
  opt.step();
  // Snapshot: parameters, state and step count.
  std::map<std::string, array<float>> saved;
  const auto& copt = opt;
  copt.for_each_state([&](const std::string& name, const auto& t) { saved[name] = t; });
  const array<float> w = layer.weight().value, b = layer.bias().value;
  const auto steps = opt.steps();
  grads(3);
  opt.step();
  const array<float> w_ref = layer.weight().value;

  layer.weight().value = w;
  layer.bias().value = b;
  adam<float> restored(params, {.learning_rate = 1e-2});
  restored.for_each_state([&](const std::string& name, auto& t) { t = saved.at(name); });
  restored.set_steps(steps);
  grads(3);
  restored.step();
  CHECK(restored.steps() == 3);
  CHECK(layer.weight().value == w_ref);

  // Without the step count the bias correction differs, so the result must differ.
  layer.weight().value = w;
  adam<float> no_steps(params, {.learning_rate = 1e-2});
  no_steps.for_each_state([&](const std::string& name, auto& t) { t = saved.at(name); });
  no_steps.step();
  CHECK(layer.weight().value != w_ref);
}

TEST_CASE("sgd: momentum buffer restored with the step count continues identically") {
  auto p = big_parameter<double>(5, 10);
  named_parameter_list<double> list{{"p", &p}};
  sgd<double> opt(list, {.learning_rate = 0.1, .momentum = 0.9});
  opt.step();
  array<double> buf;
  opt.for_each_state([&](const std::string& name, auto& t) {
    CHECK(name == "sgd.momentum_buffer.p");
    buf = t;
  });
  const array<double> v = p.value;
  opt.step();
  const array<double> ref = p.value;
  p.value = v;
  sgd<double> restored(list, {.learning_rate = 0.1, .momentum = 0.9});
  restored.for_each_state([&](const std::string&, auto& t) { t = buf; });
  restored.set_steps(1);
  restored.step();
  CHECK(p.value == ref);
}

TEST_CASE("optimisers: bad options and shapes throw typed errors naming the problem") {
  parameter<float> w({2, 3});
  named_parameter_list<float> list{{"enc.w", &w}};
  CHECK_THROWS_WITH_AS(adam<float>(list, {.beta1 = 1.0}), "adam: expected 0 <= beta1 < 1, got 1.000000",
                       config_error);
  CHECK_THROWS_WITH_AS(adam<float>(list, {.learning_rate = -1}),
                       "adam: expected a finite learning rate >= 0, got -1.000000", config_error);
  CHECK_THROWS_WITH_AS(sgd<float>(list, {.nesterov = true}),
                       "sgd: Nesterov momentum requires momentum > 0 and zero dampening", config_error);
  CHECK_THROWS_WITH_AS(sgd<float>(list, {.momentum = 0.9, .dampening = 0.5, .nesterov = true}),
                       "sgd: Nesterov momentum requires momentum > 0 and zero dampening", config_error);
  named_parameter_list<float> null_list{{"x", nullptr}};
  CHECK_THROWS_WITH_AS(sgd<float>(null_list, {}), "sgd: parameter 'x' is null", config_error);

  adam<float> opt(list, {});
  w.grad.resize({3, 2});
  CHECK_THROWS_WITH_AS(opt.step(), "adam: gradient of 'enc.w': expected [2, 3], got [3, 2]", shape_error);
  w.grad.resize({2, 3});
  w.value.resize({6});
  w.grad.resize({6});
  CHECK_THROWS_WITH_AS(
      opt.step(),
      "adam: parameter 'enc.w' changed shape since the optimiser was built: expected [2, 3], got [6]",
      shape_error);
}

TEST_CASE("schedules: match torch LinearLR, StepLR and SequentialLR, and set the optimiser's rate") {
  auto g = read_golden("optim.txt");
  const linear_warmup warm{.base_lr = 0.1, .warmup_steps = 4};
  const step_decay decay{.base_lr = 0.1, .step_size = 3, .gamma = 0.5};
  const warmup_step_decay both{.base_lr = 0.1, .warmup_steps = 4, .step_size = 3, .gamma = 0.5};
  for (std::size_t s = 0; s < 12; ++s) {
    CAPTURE(s);
    CHECK(warm.lr_at(s) == doctest::Approx(g["sched.warmup"](s)).epsilon(1e-14));
    CHECK(decay.lr_at(s) == doctest::Approx(g["sched.step"](s)).epsilon(1e-14));
    CHECK(both.lr_at(s) == doctest::Approx(g["sched.sequential"](s)).epsilon(1e-14));
  }
  CHECK(warm.lr_at(0) == 0.025);
  CHECK(warm.lr_at(1000) == 0.1);
  CHECK(linear_warmup{.base_lr = 0.1, .warmup_steps = 0}.lr_at(0) == 0.1);
  CHECK(both.lr_at(4 + 3 * 5) == doctest::Approx(0.1 * std::pow(0.5, 5)));
  CHECK(constant_lr{.base_lr = 0.3}.lr_at(99) == 0.3);
  CHECK_THROWS_WITH_AS(step_decay{.step_size = 0}.lr_at(1), "step_decay: expected step_size > 0, got 0",
                       config_error);

  parameter<float> w({2});
  named_parameter_list<float> list{{"w", &w}};
  sgd<float> opt(list, {.learning_rate = 1.0});
  for (int i = 0; i < 5; ++i) {
    CHECK(apply_schedule(both, opt) == both.lr_at(opt.steps()));
    CHECK(opt.learning_rate() == both.lr_at(opt.steps()));
    opt.step();
  }
}

TEST_CASE("cosine_annealing: torch CosineAnnealingLR(T_max, eta_min = 0) values, then 0") {
  const cosine_annealing c{.base_lr = 0.1, .total_steps = 4};
  // 0.1 * (1 + cos(pi s / 4)) / 2 for s = 0..3: 0.1, 0.05 + 0.05 / sqrt(2), 0.05, 0.05 - 0.05 / sqrt(2).
  CHECK(c.lr_at(0) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(c.lr_at(1) == doctest::Approx(0.0853553390593273762).epsilon(1e-14));
  CHECK(c.lr_at(2) == doctest::Approx(0.05).epsilon(1e-14));
  CHECK(c.lr_at(3) == doctest::Approx(0.0146446609406726238).epsilon(1e-13));
  CHECK(c.lr_at(4) == 0.0);
  CHECK(c.lr_at(100) == 0.0);
  CHECK(cosine_annealing{.base_lr = 0.3, .total_steps = 0}.lr_at(7) == 0.3);
}

TEST_CASE("clip_grad_norm: matches torch.nn.utils.clip_grad_norm_") {
  for (const auto& c : {std::pair{"clip_small", 1.0}, std::pair{"clip_large", 100.0}}) {
    const char* const tag = c.first;  // not a structured binding: clang 14's CAPTURE cannot take one
    const double max_norm = c.second;
    CAPTURE(tag);
    golden_params<float> p;
    p.set_grads(0);
    p.w.grad *= 3.0f;
    p.b.grad *= 3.0f;
    const double total = clip_grad_norm(p.list(), max_norm);
    CHECK(total == doctest::Approx(p.g[std::string(tag) + ".total_norm"](0)).epsilon(1e-6));
    CHECK(max_relative_error(p.w.grad, p.g[std::string(tag) + ".w"]) < 1e-5);
    CHECK(max_relative_error(p.b.grad, p.g[std::string(tag) + ".b"]) < 1e-5);
  }
  // After clipping to 1, the norm is 1 (up to the 1e-6 guard).
  golden_params<double> p;
  p.set_grads(1);
  clip_grad_norm(p.list(), 1.0);
  CHECK(clip_grad_norm(p.list(), 1e9) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK_THROWS_AS(clip_grad_norm(p.list(), -1.0), config_error);
}

TEST_CASE("gradient finiteness: all_finite and check_finite_gradients name the first bad parameter") {
  parameter<float> a({4}), b({2, 3}), c({5});
  named_parameter_list<float> list{{"enc.a", &a}, {"ar.b", &b}, {"head.c", &c}};
  CHECK(all_finite(list));
  CHECK_NOTHROW(check_finite_gradients(list));
  c.grad(1) = std::numeric_limits<float>::quiet_NaN();
  b.grad(1, 2) = std::numeric_limits<float>::infinity();
  CHECK_FALSE(all_finite(list));
  CHECK_THROWS_WITH_AS(check_finite_gradients(list),
                       "non-finite gradient in parameter 'ar.b' at element 5 (inf)", numeric_error);
  b.grad(1, 2) = 0;
  CHECK_THROWS_WITH_AS(check_finite_gradients(list), doctest::Contains("parameter 'head.c' at element 1"),
                       numeric_error);
  // Across chunk boundaries of a large parameter: the first bad element, not the first chunk found.
  auto big = big_parameter<double>(1);
  named_parameter_list<double> big_list{{"big", &big}};
  big.grad(2 * optimizer_chunk_size + 5) = -std::numeric_limits<double>::infinity();
  big.grad(optimizer_chunk_size + 7) = std::numeric_limits<double>::quiet_NaN();
  const auto loc = find_nonfinite_gradient(big_list);
  CHECK(loc.found);
  CHECK(loc.element == optimizer_chunk_size + 7);
}
