#include "recurrent_checks.hpp"

#include <xtensor/xbuilder.hpp>

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE("lstm: finite differences in double, 1 layer, zero initial state", Backend,
                   CPC_TEST_BACKENDS) {
  check_gradients<lstm<double, Backend>>(1, true, false);
}
TEST_CASE_TEMPLATE("lstm: finite differences in double, 2 layers, given initial state", Backend,
                   CPC_TEST_BACKENDS) {
  check_gradients<lstm<double, Backend>>(2, true, true);
}
TEST_CASE_TEMPLATE("lstm: finite differences in double, 2 layers, no bias", Backend, CPC_TEST_BACKENDS) {
  check_gradients<lstm<double, Backend>>(2, false, false);
}
TEST_CASE_TEMPLATE("lstm: matches torch.nn.LSTM (2 layers, batch_first) golden values in float", Backend,
                   CPC_TEST_BACKENDS) {
  check_golden<lstm<float, Backend>>("lstm.txt");
}
TEST_CASE_TEMPLATE("lstm: causality, outputs up to t bit-identical when later inputs change", Backend,
                   CPC_TEST_BACKENDS) {
  check_causality<lstm<float, Backend>>();
}
TEST_CASE_TEMPLATE("lstm: batch independence and permutation, bit-identical", Backend, CPC_TEST_BACKENDS) {
  check_batch_independence<lstm<float, Backend>>();
}
TEST_CASE_TEMPLATE("lstm: streaming in chunks equals one pass, bit-identical", Backend, CPC_TEST_BACKENDS) {
  check_streaming<lstm<float, Backend>>();
}
TEST_CASE(
    "lstm: an item's outputs are bit-identical in batches of 1 to 20 with 1 and 2 threads (GEMM tiles of 4, "
    "8, 12 rows)") {
  check_tile_invariance<lstm<float>>();
}
TEST_CASE("lstm: results bit-identical for 1 and 2 threads") {
  check_thread_count<lstm<float>>();
}
TEST_CASE_TEMPLATE("lstm: PyTorch parameter names, shapes and init", Backend, CPC_TEST_BACKENDS) {
  check_parameters<lstm<float, Backend>>(4);
}
TEST_CASE_TEMPLATE("lstm: shape and option errors", Backend, CPC_TEST_BACKENDS) {
  check_errors<lstm<float, Backend>>("lstm");
}

TEST_CASE("lstm: cpu equals reference (1e-5) on odd sizes, one item, one step, 2 layers, no bias") {
  check_backends<lstm>(1e-5);
}
TEST_CASE(
    "lstm: cpu equals reference (1e-5) from a given initial state, final state and gradients included") {
  check_backends_with_state<lstm>(1e-5);
}

TEST_CASE_TEMPLATE("lstm: one step by hand", Backend, CPC_TEST_BACKENDS) {
  rng gen(0);
  lstm<double, Backend> layer({.input_size = 1, .hidden_size = 1}, gen);
  layer.for_each_parameter([](const std::string& name, parameter<double>& p) {
    p.value.fill(name.starts_with("weight") ? 0.5 : 0.1);
  });
  typename lstm<double, Backend>::state s0{{{{0.2}}}, {{{0.3}}}}, sn;
  tensor3<double> x = {{{1.0}}}, y;
  layer.forward(x, y, &s0, &sn);
  auto sg = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  const double a = 0.5 + 0.1 + 0.5 * 0.2 + 0.1;  // every gate's pre-activation
  const double c = sg(a) * 0.3 + sg(a) * std::tanh(a), h = sg(a) * std::tanh(c);
  CHECK(y(0, 0, 0) == doctest::Approx(h).epsilon(1e-14));
  CHECK(sn.c(0, 0, 0) == doctest::Approx(c).epsilon(1e-14));
}

TEST_CASE_TEMPLATE(
    "lstm: packed [2L, B, H] state streams like the (h, c) state and fits cpc::model's interface", Backend,
    CPC_TEST_BACKENDS) {
  auto layer = make_det_layer<lstm<float, Backend>>();
  const std::size_t T = 7;
  tensor3<float> x = det_input(det_b, T), y, y2;
  typename lstm<float, Backend>::state s0, sn;
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
