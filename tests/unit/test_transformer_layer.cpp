// cpc::transformer_layer (CPC_audio's prediction network): finite differences in double, PyTorch
// golden values, causality, cpu against reference, parameter names and shapes, a safetensors
// round trip, errors.
#include <doctest/doctest.h>

#include <cpc/io/safetensors.hpp>
#include <cpc/layers/transformer_layer.hpp>

#include <filesystem>
#include <map>
#include <string>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {
const transformer_layer_options small{
    .model_dim = 6, .heads = 2, .ff_dim = 7, .max_time = 6, .relative_position = true};
}  // namespace

TEST_CASE_TEMPLATE("transformer_layer: finite differences in double for the input and every parameter",
                   Backend, CPC_TEST_BACKENDS) {
  for (bool relative : {true, false}) {
    CAPTURE(relative);
    rng gen(4);
    auto opt = small;
    opt.relative_position = relative;
    transformer_layer<double, Backend> layer(opt, gen);
    // Non-trivial norms (PyTorch's init is 1 and 0).
    layer.for_each_parameter([&](const std::string& name, parameter<double>& p) {
      if (name.starts_with("ln_")) fill_uniform(p.value, gen, 0.8);
    });
    tensor3<double> x = xt::zeros<double>({2, 5, 6}), y, dx;
    fill_uniform(x, gen, 1.5);
    tensor3<double> r = xt::zeros_like(x);
    fill_uniform(r, gen);
    zero_grad<double>(layer);
    layer.forward(x, y);
    layer.backward(x, y, r, &dx);
    auto loss = [&] {
      tensor3<double> out;
      layer.forward(x, out);
      return project(out, r);
    };
    CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
    layer.for_each_parameter([&](const std::string& name, parameter<double>& p) {
      CAPTURE(name);
      CHECK(gradient_error(loss, p.value.data(), p.size(), p.grad.data()) < 1e-6);
    });
  }
}

TEST_CASE_TEMPLATE("transformer_layer: matches a PyTorch CPC_audio-style layer (golden values, float)",
                   Backend, CPC_TEST_BACKENDS) {
  auto g = read_golden("transformer.txt");
  rng gen(1);
  transformer_layer<float, Backend> layer({.model_dim = 6, .heads = 2, .ff_dim = 7, .max_time = 5}, gen);
  layer.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    CAPTURE(name);
    REQUIRE(g.count(name) == 1);
    CHECK(std::equal(p.value.shape().begin(), p.value.shape().end(), g[name].shape().begin(),
                     g[name].shape().end()));
    assign(p.value, g[name]);
  });
  tensor3<float> x, dy, y, dx;
  assign(x, g["x"]);
  assign(dy, g["dy"]);
  layer.forward(x, y);
  CHECK(max_relative_error(y, g["y"]) < 1e-5);
  zero_grad<float>(layer);
  layer.backward(x, y, dy, &dx);
  CHECK(max_relative_error(dx, g["dx"]) < 1e-4);
  layer.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    CAPTURE(name);
    CHECK(max_relative_error(p.grad, g["d:" + name]) < 1e-4);
  });
}

TEST_CASE_TEMPLATE("transformer_layer: causal, outputs up to t bit-identical when later inputs change",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(2);
  transformer_layer<float, Backend> layer(small, gen);
  tensor3<float> x = xt::zeros<float>({2, 6, 6}), y1, y2;
  fill_uniform(x, gen);
  layer.forward(x, y1);
  for (std::size_t c = 0; c < 6; ++c) x(1, 4, c) += 1.0f;
  layer.forward(x, y2);
  CHECK(xt::view(y1, xt::all(), xt::range(0, 4), xt::all()) ==
        xt::view(y2, xt::all(), xt::range(0, 4), xt::all()));
  CHECK(xt::view(y1, 0, xt::all(), xt::all()) == xt::view(y2, 0, xt::all(), xt::all()));
  CHECK(xt::view(y1, 1, 4, xt::all()) != xt::view(y2, 1, 4, xt::all()));
  // A prefix alone gives the same outputs as in the longer sequence (up to float rounding).
  tensor3<float> prefix = xt::view(x, xt::all(), xt::range(0, 3), xt::all()), y3;
  layer.forward(prefix, y3);
  CHECK(scaled_max_error(y3, tensor3<float>(xt::view(y2, xt::all(), xt::range(0, 3), xt::all()))) < 1e-6);
}

TEST_CASE("transformer_layer: cpu equals reference (1e-5), forward and every gradient") {
  check_layer_backends<transformer_layer, float>(
      small,
      [] {
        rng gen(3);
        tensor3<float> x = xt::zeros<float>({3, 6, 6});
        fill_uniform(x, gen);
        return x;
      }(),
      1e-5);
  check_layer_backends<transformer_layer, float>(
      transformer_layer_options{.model_dim = 16, .heads = 4, .ff_dim = 9, .max_time = 12},
      [] {
        rng gen(4);
        tensor3<float> x = xt::zeros<float>({2, 9, 16});
        fill_uniform(x, gen);
        return x;
      }(),
      1e-5);
}

TEST_CASE("transformer_layer: CPC_audio's parameter names and shapes, init bounds") {
  rng gen(0);
  transformer_layer<float> layer({.model_dim = 8, .heads = 2, .ff_dim = 5, .max_time = 4}, gen);
  std::map<std::string, std::vector<std::size_t>> got;
  std::vector<std::string> order;
  layer.for_each_parameter(
      [&](const std::string& name, parameter<float>& p) {
        got[name] = {p.value.shape().begin(), p.value.shape().end()};
        order.push_back(name);
      },
      "p");
  const std::vector<std::string> expected{
      "p.multihead.Wo.weight",   "p.multihead.Wk.weight",   "p.multihead.Wq.weight",
      "p.multihead.Wv.weight",   "p.multihead.Att.Krelpos", "p.ln_multihead.weight",
      "p.ln_multihead.bias",     "p.ffnetwork.lin1.weight", "p.ffnetwork.lin1.bias",
      "p.ffnetwork.lin2.weight", "p.ffnetwork.lin2.bias",   "p.ln_ffnetwork.weight",
      "p.ln_ffnetwork.bias"};
  CHECK(order == expected);
  CHECK(got["p.multihead.Wo.weight"] == std::vector<std::size_t>{8, 8});
  CHECK(got["p.multihead.Att.Krelpos"] == std::vector<std::size_t>{4, 4});
  CHECK(got["p.ffnetwork.lin1.weight"] == std::vector<std::size_t>{5, 8});
  CHECK(got["p.ffnetwork.lin2.weight"] == std::vector<std::size_t>{8, 5});
  CHECK(xt::amax(xt::abs(layer.relative_table().value))() <= 0.5f);  // U(+-1/sqrt(4))
  CHECK(xt::amax(xt::abs(layer.relative_table().value))() > 0.25f);
  transformer_layer<float> plain({.model_dim = 8, .heads = 2, .ff_dim = 5, .relative_position = false}, gen);
  int n = 0;
  plain.for_each_parameter([&](const std::string&, parameter<float>&) { ++n; });
  CHECK(n == 12);
}

TEST_CASE("transformer_layer: a safetensors round trip restores the outputs bit for bit") {
  rng g1(7), g2(8);
  transformer_layer<float> a(small, g1), b(small, g2);
  const auto path = std::filesystem::temp_directory_path() / "cpc_test_transformer_layer.safetensors";
  safetensors_writer w;
  a.for_each_parameter([&](const std::string& name, parameter<float>& p) { w.add(name, p.value); });
  w.save(path);
  const auto f = load_safetensors(path);
  b.for_each_parameter(
      [&](const std::string& name, parameter<float>& p) { load_into(f.at(name), p.value, name); });
  std::filesystem::remove(path);
  tensor3<float> x = xt::zeros<float>({2, 6, 6}), ya, yb;
  fill_uniform(x, g1);
  a.forward(x, ya);
  b.forward(x, yb);
  CHECK(ya == yb);
}

TEST_CASE("transformer_layer: bad options and shapes throw with a message") {
  rng gen(0);
  using layer_t = transformer_layer<float>;
  CHECK_THROWS_WITH_AS(
      layer_t({.model_dim = 6, .heads = 4}, gen),
      "transformer_layer: expected model_dim a multiple of heads, got 6 channels and 4 heads", config_error);
  CHECK_THROWS_AS(layer_t({.model_dim = 0}, gen), config_error);
  layer_t layer(small, gen);
  tensor3<float> x = xt::zeros<float>({1, 7, 6}), y;
  CHECK_THROWS_WITH_AS(layer.forward(x, y),
                       "transformer_layer forward input: expected at most 6 steps (the relative-position "
                       "table's length, max_time), got [1, 7, 6]",
                       shape_error);
  tensor3<float> w = xt::zeros<float>({1, 3, 5});
  CHECK_THROWS_WITH_AS(layer.forward(w, y),
                       "transformer_layer forward input: expected [*, *, 6], got [1, 3, 5]", shape_error);
  tensor3<float> ok = xt::zeros<float>({1, 3, 6}), dy = xt::zeros<float>({1, 2, 6});
  CHECK_THROWS_AS(layer.backward(ok, ok, ok, nullptr), config_error);  // before any forward
  layer.forward(ok, y);
  CHECK_THROWS_WITH_AS(layer.backward(ok, y, dy, nullptr),
                       "transformer_layer backward output gradient: expected [1, 3, 6], got [1, 2, 6]",
                       shape_error);
}
