#include "recurrent_checks.hpp"

#include <xtensor/xbuilder.hpp>

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("lstm: finite differences in double, 1 layer, zero initial state") {
  check_gradients<lstm<double>>(1, true, false);
}
TEST_CASE("lstm: finite differences in double, 2 layers, given initial state") {
  check_gradients<lstm<double>>(2, true, true);
}
TEST_CASE("lstm: finite differences in double, 2 layers, no bias") {
  check_gradients<lstm<double>>(2, false, false);
}
TEST_CASE("lstm: matches torch.nn.LSTM (2 layers, batch_first) golden values in float") {
  check_golden<lstm<float>>("lstm.txt");
}
TEST_CASE("lstm: causality, outputs up to t bit-identical when later inputs change") {
  check_causality<lstm<float>>();
}
TEST_CASE("lstm: batch independence and permutation, bit-identical") {
  check_batch_independence<lstm<float>>();
}
TEST_CASE("lstm: streaming in chunks equals one pass, bit-identical") {
  check_streaming<lstm<float>>();
}
TEST_CASE("lstm: results bit-identical for 1 and 2 threads") {
  check_thread_count<lstm<float>>();
}
TEST_CASE("lstm: PyTorch parameter names, shapes and init") {
  check_parameters<lstm<float>>(4);
}
TEST_CASE("lstm: shape and option errors") {
  check_errors<lstm<float>>("lstm");
}

TEST_CASE("lstm: one step by hand") {
  rng gen(0);
  lstm<double> layer({.input_size = 1, .hidden_size = 1}, gen);
  layer.for_each_parameter([](const std::string& name, parameter<double>& p) {
    p.value.fill(name.starts_with("weight") ? 0.5 : 0.1);
  });
  lstm<double>::state s0{{{{0.2}}}, {{{0.3}}}}, sn;
  tensor3<double> x = {{{1.0}}}, y;
  layer.forward(x, y, &s0, &sn);
  auto sg = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  const double a = 0.5 + 0.1 + 0.5 * 0.2 + 0.1;  // every gate's pre-activation
  const double c = sg(a) * 0.3 + sg(a) * std::tanh(a), h = sg(a) * std::tanh(c);
  CHECK(y(0, 0, 0) == doctest::Approx(h).epsilon(1e-14));
  CHECK(sn.c(0, 0, 0) == doctest::Approx(c).epsilon(1e-14));
}

TEST_CASE("lstm: packed [2L, B, H] state streams like the (h, c) state and fits cpc::model's interface") {
  auto layer = make_det_layer<lstm<float>>();
  const std::size_t T = 7;
  tensor3<float> x = det_input(det_b, T), y, y2;
  lstm<float>::state s0, sn;
  rng gen(4);
  random_state(s0, std::size_t(2), det_b, det_h, gen);
  layer.forward(x, y, &s0, &sn);
  tensor3<float> hc = xt::concatenate(xt::xtuple(s0.h, s0.c), 0);
  tensor3<float> ys = xt::zeros<float>({det_b, T, det_h});
  for (std::size_t t0 : {0UL, 4UL}) {
    const std::size_t t1 = t0 == 0 ? 4 : T;
    tensor3<float> xc = xt::view(x, xt::all(), xt::range(t0, t1), xt::all()), yc;
    layer.forward(xc, yc, &hc, &hc);
    xt::view(ys, xt::all(), xt::range(t0, t1), xt::all()) = yc;
  }
  CHECK(same(ys, y));
  tensor3<float> ref = xt::concatenate(xt::xtuple(sn.h, sn.c), 0);
  CHECK(same(hc, ref));
  tensor3<float> bad = xt::zeros<float>({std::size_t(2), det_b, det_h});
  CHECK_THROWS_WITH_AS(layer.forward(x, y2, &bad, nullptr),
                       "lstm forward initial state (h then c): expected [4, *, 20], got [2, 6, 20]",
                       shape_error);
}
