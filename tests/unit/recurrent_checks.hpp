#pragma once
// Checks shared by test_gru.cpp and test_lstm.cpp; `Layer` is cpc::gru<T, Backend> or
// cpc::lstm<T, Backend> (each check runs on every backend of CPC_TEST_BACKENDS).
#include <doctest/doctest.h>

#include <cpc/layers/gru.hpp>
#include <cpc/layers/lstm.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

namespace cpc::testing {

/// The recurrent state type of a layer: tensor3 (GRU) or lstm::state.
template <class Layer>
struct state_of {
  using type = tensor3<double>;
};
template <class T, class Backend>
struct state_of<gru<T, Backend>> {
  using type = tensor3<T>;
};
template <class T, class Backend>
struct state_of<lstm<T, Backend>> {
  using type = typename lstm<T, Backend>::state;
};
template <class Layer>
using state_t = typename state_of<Layer>::type;

/// Fills a state (tensor3 for GRU, lstm::state with .h and .c) with U(-1, 1), shape [L, B, H].
template <class S>
void random_state(S& s, std::size_t L, std::size_t B, std::size_t H, rng& gen) {
  if constexpr (requires { s.c; }) {
    random_state(s.h, L, B, H, gen);
    random_state(s.c, L, B, H, gen);
  } else {
    s = xt::zeros<typename S::value_type>({L, B, H});
    fill_uniform(s, gen);
  }
}

/// Bit-identical shapes and values (tensor3 or lstm::state).
template <class S>
bool same(const S& a, const S& b) {
  if constexpr (requires { a.c; })
    return same(a.h, b.h) && same(a.c, b.c);
  else
    return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}

/// Finite differences in double for the input and every parameter, optionally from a random
/// initial state (which also exercises the h0 term of dW_hh).
template <class Layer>
void check_gradients(std::size_t layers, bool bias, bool with_state) {
  rng gen(11 + layers);
  const std::size_t B = 2, T = 4, I = 3, H = 4;
  Layer layer({.input_size = I, .hidden_size = H, .num_layers = layers, .bias = bias}, gen);
  state_t<Layer> s0;
  random_state(s0, layers, B, H, gen);
  const state_t<Layer>* init = with_state ? &s0 : nullptr;
  tensor3<double> x = xt::zeros<double>({B, T, I}), y, dx;
  fill_uniform(x, gen);
  tensor3<double> r = xt::zeros<double>({B, T, H});
  fill_uniform(r, gen);
  zero_grad<double>(layer);
  layer.forward(x, y, init, nullptr);
  layer.backward(x, y, r, &dx);
  auto loss = [&] {
    tensor3<double> yy;
    layer.forward(x, yy, init, nullptr);
    return project(yy, r);
  };
  CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
  std::size_t visited = 0;
  layer.for_each_parameter([&](const std::string& name, parameter<double>& p) {
    INFO(name);
    CHECK(gradient_error(loss, p.value.data(), p.size(), p.grad.data()) < 1e-6);
    ++visited;
  });
  CHECK(visited == layers * (bias ? 4 : 2));
}

/// Golden values from tests/golden/gen_rnn.py (2 layers, random initial state), in float.
template <class Layer>
void check_golden(const std::string& file) {
  auto g = read_golden(file);
  rng gen(0);
  const auto& xs = g["x"].shape();
  const auto& hs = g["h0"].shape();
  Layer layer({.input_size = xs[2], .hidden_size = hs[2], .num_layers = hs[0]}, gen);
  layer.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    REQUIRE(g.count(name) == 1);
    REQUIRE(g[name].shape() == std::vector<std::size_t>(p.value.shape().begin(), p.value.shape().end()));
    assign(p.value, g[name]);
  });
  tensor3<float> x, y, dy, dx;
  assign(x, g["x"]);
  assign(dy, g["dy"]);
  state_t<Layer> s0, sn;
  if constexpr (std::is_same_v<state_t<Layer>, tensor3<float>>) {
    assign(s0, g["h0"]);
  } else {
    assign(s0.h, g["h0"]);
    assign(s0.c, g["c0"]);
  }
  layer.forward(x, y, &s0, &sn);
  CHECK(max_relative_error(y, g["y"]) < 1e-4);
  if constexpr (std::is_same_v<state_t<Layer>, tensor3<float>>) {
    CHECK(max_relative_error(sn, g["h_n"]) < 1e-4);
  } else {
    CHECK(max_relative_error(sn.h, g["h_n"]) < 1e-4);
    CHECK(max_relative_error(sn.c, g["c_n"]) < 1e-4);
  }
  layer.backward(x, y, dy, &dx);
  CHECK(max_relative_error(dx, g["dx"]) < 1e-4);
  std::size_t visited = 0;
  layer.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    INFO(name);
    CHECK(max_relative_error(p.grad, g["d" + name]) < 1e-4);
    ++visited;
  });
  CHECK(visited == 8);
}

// Sizes that reach every path of the GEMM kernel (full and partial register blocks) and of the
// SIMD element-wise loops (full and partial vectors).
inline constexpr std::size_t det_b = 6, det_t = 9, det_i = 13, det_h = 20;

template <class Layer>
Layer make_det_layer(std::size_t layers = 2) {
  rng gen(7);
  return Layer({.input_size = det_i, .hidden_size = det_h, .num_layers = layers}, gen);
}

inline tensor3<float> det_input(std::size_t B = det_b, std::size_t T = det_t, std::uint64_t seed = 8) {
  rng gen(seed);
  tensor3<float> x = xt::zeros<float>({B, T, det_i});
  fill_uniform(x, gen);
  return x;
}

/// Outputs at time t are bit-identical when inputs after t change.
template <class Layer>
void check_causality() {
  auto layer = make_det_layer<Layer>();
  tensor3<float> x = det_input(), y, y2;
  layer.forward(x, y);
  for (std::size_t t0 : {0UL, 3UL, det_t - 2}) {
    tensor3<float> x2 = x;
    rng gen(100 + t0);
    for (std::size_t b = 0; b < det_b; ++b)
      for (std::size_t t = t0 + 1; t < det_t; ++t)
        for (std::size_t i = 0; i < det_i; ++i) x2(b, t, i) += static_cast<float>(gen.uniform(0.5, 1.5));
    layer.forward(x2, y2);
    INFO("t0 = " << t0);
    tensor3<float> a = xt::view(y, xt::all(), xt::range(0, t0 + 1), xt::all());
    tensor3<float> b = xt::view(y2, xt::all(), xt::range(0, t0 + 1), xt::all());
    CHECK(same(a, b));
    // ...and the change does reach the later outputs.
    tensor3<float> c = xt::view(y, xt::all(), xt::range(t0 + 1, det_t), xt::all());
    tensor3<float> d = xt::view(y2, xt::all(), xt::range(t0 + 1, det_t), xt::all());
    CHECK_FALSE(same(c, d));
  }
}

/// Item b of a batch equals item b run alone, and a permuted batch gives permuted outputs.
template <class Layer>
void check_batch_independence() {
  auto layer = make_det_layer<Layer>();
  tensor3<float> x = det_input(), y;
  layer.forward(x, y);
  for (std::size_t b = 0; b < det_b; ++b) {
    tensor3<float> xb = xt::view(x, xt::range(b, b + 1), xt::all(), xt::all()), yb;
    layer.forward(xb, yb);
    tensor3<float> ref = xt::view(y, xt::range(b, b + 1), xt::all(), xt::all());
    INFO("b = " << b);
    CHECK(xt::allclose(yb, ref, 1e-5, 1e-6));
    CHECK(same(yb, ref));  // the kernels are designed to make this bit-exact
  }
  const std::vector<std::size_t> perm{3, 0, 5, 1, 4, 2};
  tensor3<float> xp = x, yp;
  for (std::size_t b = 0; b < det_b; ++b) xt::view(xp, b) = xt::view(x, perm[b]);
  layer.forward(xp, yp);
  for (std::size_t b = 0; b < det_b; ++b) {
    tensor3<float> got = xt::view(yp, xt::range(b, b + 1), xt::all(), xt::all());
    tensor3<float> ref = xt::view(y, xt::range(perm[b], perm[b] + 1), xt::all(), xt::all());
    CHECK(same(got, ref));
  }
}

/// A sequence fed in chunks, carrying the final state into the next chunk, gives bit-identically
/// the outputs and final state of one pass, from a zero or a given initial state.
template <class Layer>
void check_streaming() {
  auto layer = make_det_layer<Layer>();
  const std::size_t T = 12;
  tensor3<float> x = det_input(det_b, T), y;
  for (bool with_state : {false, true}) {
    INFO("initial state given: " << with_state);
    rng gen(9);
    state_t<Layer> s0, s_full, s;
    random_state(s0, std::size_t(2), det_b, det_h, gen);
    layer.forward(x, y, with_state ? &s0 : nullptr, &s_full);
    if (with_state) s = s0;
    tensor3<float> ys = xt::zeros<float>({det_b, T, det_h});
    std::size_t t0 = 0;
    bool first = true;
    for (std::size_t len : {1UL, 3UL, 0UL, 2UL, 5UL, 1UL}) {  // includes an empty chunk
      tensor3<float> xc = xt::view(x, xt::all(), xt::range(t0, t0 + len), xt::all()), yc;
      layer.forward(xc, yc, (first && !with_state) ? nullptr : &s, &s);  // h_n aliases h0
      xt::view(ys, xt::all(), xt::range(t0, t0 + len), xt::all()) = yc;
      t0 += len;
      first = false;
    }
    REQUIRE(t0 == T);
    CHECK(same(ys, y));
    CHECK(same(s, s_full));
  }
}

/// Each item's outputs are bit-identical whatever the batch it is run in and the thread count:
/// batches of 1 to 20 items split into different slices, so the recurrent GEMM runs micro-tiles
/// of 4, 8 and 12 rows, full and partial (cpu; the reference backend is one loop per item).
template <class Layer>
void check_tile_invariance() {
  auto layer = make_det_layer<Layer>();
  const std::size_t B = 20;
  tensor3<float> x = det_input(B, det_t), y;
  set_num_threads(1);
  layer.forward(x, y);
  for (std::size_t threads : {1, 2}) {
    set_num_threads(threads);
    for (std::size_t batch : {1, 3, 5, 8, 9, 12, 16, 20}) {
      INFO("threads " << threads << ", batch " << batch);
      tensor3<float> xb = xt::view(x, xt::range(0, batch), xt::all(), xt::all()), yb;
      layer.forward(xb, yb);
      tensor3<float> ref = xt::view(y, xt::range(0, batch), xt::all(), xt::all());
      CHECK(same(yb, ref));
    }
  }
  set_num_threads(std::max<std::size_t>(1, tbb::info::default_concurrency()));
}

/// Forward outputs and every gradient are bit-identical for 1 and 2 threads.
template <class Layer>
void check_thread_count() {
  auto run = [](std::size_t threads) {
    set_num_threads(threads);
    auto layer = make_det_layer<Layer>();
    tensor3<float> x = det_input(9, det_t), y, dx;
    rng gen(3);
    tensor3<float> dy = xt::zeros<float>({std::size_t(9), det_t, det_h});
    fill_uniform(dy, gen);
    layer.forward(x, y);
    layer.backward(x, y, dy, &dx);
    std::vector<float> all(y.begin(), y.end());
    all.insert(all.end(), dx.begin(), dx.end());
    layer.for_each_parameter([&](const std::string&, parameter<float>& p) {
      all.insert(all.end(), p.grad.begin(), p.grad.end());
    });
    return all;
  };
  const auto one = run(1);
  const auto two = run(2);
  set_num_threads(std::max<std::size_t>(1, tbb::info::default_concurrency()));
  CHECK(one == two);
}

/// Parameter names, shapes and PyTorch's init bound 1/sqrt(hidden_size).
template <class Layer>
void check_parameters(std::size_t gates) {
  rng gen(2);
  Layer layer({.input_size = 10, .hidden_size = 100, .num_layers = 2}, gen);
  std::vector<std::string> names;
  std::vector<std::vector<std::size_t>> shapes;
  layer.for_each_parameter(
      [&](const std::string& name, parameter<float>& p) {
        names.push_back(name);
        shapes.emplace_back(p.value.shape().begin(), p.value.shape().end());
        CHECK(xt::amax(xt::abs(p.value))() <= 0.1f);
        CHECK(xt::amax(xt::abs(p.value))() > 0.095f);
      },
      "ar");
  const std::size_t G = gates * 100;
  CHECK(names == std::vector<std::string>{"ar.weight_ih_l0", "ar.weight_hh_l0", "ar.bias_ih_l0",
                                          "ar.bias_hh_l0", "ar.weight_ih_l1", "ar.weight_hh_l1",
                                          "ar.bias_ih_l1", "ar.bias_hh_l1"});
  CHECK(shapes ==
        std::vector<std::vector<std::size_t>>{{G, 10}, {G, 100}, {G}, {G}, {G, 100}, {G, 100}, {G}, {G}});
  CHECK(std::abs(xt::mean(layer.weight_hh(1).value)()) < 0.01);
}

/// Bad shapes throw shape_error naming both shapes; bad options throw config_error.
template <class Layer>
void check_errors(const std::string& name) {
  rng gen(1);
  Layer layer({.input_size = 8, .hidden_size = 3, .num_layers = 2}, gen);
  tensor3<float> x = xt::zeros<float>({2, 5, 7}), y, dx;
  CHECK_THROWS_WITH_AS(layer.forward(x, y),
                       (name + " forward input: expected [*, *, 8], got [2, 5, 7]").c_str(), shape_error);
  tensor3<float> good = xt::zeros<float>({2, 5, 8});
  state_t<Layer> s;
  random_state(s, std::size_t(1), std::size_t(2), std::size_t(3), gen);
  CHECK_THROWS_WITH_AS(layer.forward(good, y, &s, nullptr),
                       (name + " forward initial hidden state: expected [2, 2, 3], got [1, 2, 3]").c_str(),
                       shape_error);
  CHECK_THROWS_WITH_AS(layer.backward(good, y, y, &dx),
                       (name + " backward: expected a forward call first").c_str(), config_error);
  layer.forward(good, y);
  tensor3<float> dy = xt::zeros<float>({2, 4, 3});
  CHECK_THROWS_WITH_AS(layer.backward(good, y, dy, &dx),
                       (name + " backward output gradient: expected [2, 5, 3], got [2, 4, 3]").c_str(),
                       shape_error);
  tensor3<float> other = xt::zeros<float>({3, 5, 8});
  CHECK_THROWS_WITH_AS(layer.backward(other, y, y, &dx),
                       (name + " backward input: expected [2, 5, 8], got [3, 5, 8]").c_str(), shape_error);
  CHECK_THROWS_AS(Layer({.input_size = 8, .hidden_size = 0}, gen), config_error);
}

/// cpu against reference (`check_layer_backends`: y, dx and every parameter gradient) on odd
/// sizes, one item, one step, several layers, with and without bias, to `tol`.
template <template <class, class> class Layer>
void check_backends(double tol) {
  struct config {
    std::size_t batch, time, in, hidden, layers;
    bool bias;
  };
  for (const auto& c : std::vector<config>{{1, 1, 1, 1, 1, true},
                                           {3, 7, 13, 20, 2, true},
                                           {2, 5, 9, 17, 1, false},
                                           {20, 4, 5, 33, 2, true}}) {
    CAPTURE(c.batch);
    CAPTURE(c.time);
    CAPTURE(c.hidden);
    CAPTURE(c.layers);
    CAPTURE(c.bias);
    rng gen(c.batch + c.hidden);
    tensor3<float> x = xt::zeros<float>({c.batch, c.time, c.in});
    fill_uniform(x, gen);
    check_layer_backends<Layer, float>(
        recurrent_options{
            .input_size = c.in, .hidden_size = c.hidden, .num_layers = c.layers, .bias = c.bias},
        x, tol);
  }
}

/// cpu against reference from a given initial state: y, the final state, dx and every parameter
/// gradient (which includes the h0 term of dW_hh) agree to `tol`.
template <template <class, class> class Layer>
void check_backends_with_state(double tol) {
  rng gen(31);
  const std::size_t B = 5, T = 6, I = 7, H = 19, L = 2;
  const recurrent_options opt{.input_size = I, .hidden_size = H, .num_layers = L};
  rng g1(4), g2(4);
  Layer<float, cpu> a(opt, g1);
  Layer<float, reference> b(opt, g2);
  state_t<Layer<float, cpu>> s0a, sa;
  state_t<Layer<float, reference>> s0b, sb;  // the same values (a separate type for LSTM)
  rng gs(5);
  random_state(s0a, L, B, H, gs);
  gs = rng(5);
  random_state(s0b, L, B, H, gs);
  tensor3<float> x = xt::zeros<float>({B, T, I}), ya, yb, dxa, dxb;
  fill_uniform(x, gen);
  a.forward(x, ya, &s0a, &sa);
  b.forward(x, yb, &s0b, &sb);
  CHECK(scaled_max_error(ya, yb) < tol);
  if constexpr (requires { sa.c; }) {
    CHECK(scaled_max_error(sa.h, sb.h) < tol);
    CHECK(scaled_max_error(sa.c, sb.c) < tol);
  } else {
    CHECK(scaled_max_error(sa, sb) < tol);
  }
  const tensor3<float> dy = xt::cos(yb * 3.0f);
  a.backward(x, ya, dy, &dxa);
  b.backward(x, yb, dy, &dxb);
  CHECK(scaled_max_error(dxa, dxb) < tol);
  auto pa = named_parameters<float>(a);
  auto pb = named_parameters<float>(b);
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    CHECK(scaled_max_error(pa[i].second->grad, pb[i].second->grad) < tol);
  }
}

}  // namespace cpc::testing
