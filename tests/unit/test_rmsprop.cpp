// cpc::rmsprop against torch.optim.RMSprop (tests/golden/gen_rmsprop.py): plain, momentum,
// centered, all options with a changing learning rate; over a model's flat buffers
// (parameter_store) equal to per-parameter updates; state saved and restored; bad options.
#include <doctest/doctest.h>

#include <cpc/backend/parameter_store.hpp>
#include <cpc/layers/linear.hpp>
#include <cpc/optim/rmsprop.hpp>

#include <map>
#include <string>
#include <vector>

#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

/// The two parameters of tests/golden/rmsprop.txt: w [3, 4] and b [4], four steps of gradients.
template <class T>
struct golden_params {
  std::map<std::string, array<double>> g = read_golden("rmsprop.txt");
  parameter<T> w{{3, 4}}, b{{4}};
  golden_params() {
    assign(w.value, g["w0"]);
    assign(b.value, g["b0"]);
  }
  named_parameter_list<T> list() { return {{"w", &w}, {"b", &b}}; }
  template <class Opt>
  void run(Opt& opt, std::vector<double> lrs = {}) {
    for (int s = 0; s < 4; ++s) {
      if (!lrs.empty()) opt.set_learning_rate(lrs[s]);
      const std::string step = std::to_string(s);  // "g<s>.w" built in steps (GCC 12 -Wrestrict)
      assign(w.grad, g[std::string("g").append(step).append(".w")]);
      assign(b.grad, g[std::string("g").append(step).append(".b")]);
      opt.step();
    }
  }
  /// Largest relative error of the parameters and of every state tensor against the golden tag;
  /// `states` counts the state tensors seen.
  template <class Opt>
  double error(Opt& opt, const std::string& tag, int& states) {
    double e =
        std::max(max_relative_error(w.value, g[tag + ".w"]), max_relative_error(b.value, g[tag + ".b"]));
    states = 0;
    opt.for_each_state([&](const std::string& name, auto& t) {
      // "rmsprop.<key>.<param>" -> golden "<tag>.<key>.<param>"
      const std::string rest = name.substr(std::string("rmsprop.").size());
      e = std::max(e, max_relative_error(t, g.at(tag + "." + rest)));
      ++states;
    });
    return e;
  }
};

template <class T, class Backend>
void check_golden(double tol) {
  using opts = typename rmsprop<T, Backend>::options;
  struct config {
    const char* tag;
    opts o;
    std::vector<double> lrs;
    int states;
  };
  const std::vector<config> configs{
      {"rmsprop_default", opts{}, {}, 2},
      {"rmsprop_momentum", opts{.learning_rate = 0.005, .alpha = 0.9, .eps = 1e-5, .momentum = 0.8}, {}, 4},
      {"rmsprop_centered", opts{.learning_rate = 0.003, .alpha = 0.95, .eps = 1e-6, .centered = true}, {}, 4},
      {"rmsprop_all",
       opts{.learning_rate = 0.01,
            .alpha = 0.99,
            .eps = 0.1,
            .weight_decay = 0.05,
            .momentum = 0.5,
            .centered = true},
       {0.01, 0.02, 0.005, 0.001},
       6}};
  for (const auto& c : configs) {
    CAPTURE(c.tag);
    golden_params<T> p;
    rmsprop<T, Backend> opt(p.list(), c.o);
    p.run(opt, c.lrs);
    CHECK(opt.steps() == 4);
    int states = 0;
    CHECK(p.error(opt, c.tag, states) < tol);
    CHECK(states == c.states);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("rmsprop: matches torch.optim.RMSprop golden values (plain, momentum, centered, all)",
                   Backend, cpc::cpu, cpc::reference) {
  check_golden<float, Backend>(2e-5);
  check_golden<double, Backend>(1e-12);
}

TEST_CASE("rmsprop: one update over a model's flat buffers equals per-parameter updates; state restores") {
  rng gen(3);
  linear<double> a({.in_features = 5, .out_features = 3}, gen);
  linear<double> b = a;  // same values, its own storage
  parameter_store<double, cpu> store(a);
  const typename rmsprop<double>::options o{.learning_rate = 0.01, .momentum = 0.9, .centered = true};
  rmsprop<double> flat(store.parameters(), o);
  rmsprop<double> each(named_parameters<double>(b), o);
  auto grads = [](linear<double>& l, std::uint64_t seed) {
    rng g(seed);
    fill_uniform(l.weight().grad, g);
    fill_uniform(l.bias().grad, g);
  };
  for (std::uint64_t s = 1; s <= 3; ++s) {
    grads(a, s);
    grads(b, s);
    flat.step();
    each.step();
  }
  CHECK(a.weight().value == b.weight().value);
  CHECK(a.bias().value == b.bias().value);

  std::vector<std::string> names;
  std::map<std::string, array<double>> saved;
  each.for_each_state([&](const std::string& name, const auto& t) {
    names.push_back(name);
    saved[name] = t;
  });
  CHECK(names == std::vector<std::string>{"rmsprop.square_avg.weight", "rmsprop.square_avg.bias",
                                          "rmsprop.momentum_buffer.weight", "rmsprop.momentum_buffer.bias",
                                          "rmsprop.grad_avg.weight", "rmsprop.grad_avg.bias"});
  const array<double> w = b.weight().value, bias = b.bias().value;
  grads(b, 4);
  each.step();
  const array<double> w_ref = b.weight().value;
  b.weight().value = w;
  b.bias().value = bias;
  rmsprop<double> restored(named_parameters<double>(b), o);
  restored.for_each_state([&](const std::string& name, auto& t) { t = saved.at(name); });
  restored.set_steps(3);
  grads(b, 4);
  restored.step();
  CHECK(b.weight().value == w_ref);
  CHECK(restored.steps() == 4);
}

TEST_CASE("rmsprop: bad options throw config_error naming the option") {
  parameter<float> w({2, 3});
  named_parameter_list<float> list{{"w", &w}};
  using opts = rmsprop<float>::options;
  auto message = [&](opts o) {
    try {
      rmsprop<float> r(list, o);
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message({.alpha = 1.5}).find("alpha") != std::string::npos);
  CHECK(message({.eps = -1}).find("eps") != std::string::npos);
  CHECK(message({.momentum = -0.1}).find("momentum") != std::string::npos);
  CHECK(message({.weight_decay = -1}).find("weight_decay") != std::string::npos);
  CHECK(message({.learning_rate = -1}).find("learning rate") != std::string::npos);
}
