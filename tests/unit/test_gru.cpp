#include "recurrent_checks.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE("gru: finite differences in double, 1 layer, zero initial state", Backend,
                   CPC_TEST_BACKENDS) {
  check_gradients<gru<double, Backend>>(1, true, false);
}
TEST_CASE_TEMPLATE("gru: finite differences in double, 2 layers, given initial state", Backend,
                   CPC_TEST_BACKENDS) {
  check_gradients<gru<double, Backend>>(2, true, true);
}
TEST_CASE_TEMPLATE("gru: finite differences in double, 2 layers, no bias", Backend, CPC_TEST_BACKENDS) {
  check_gradients<gru<double, Backend>>(2, false, false);
}
TEST_CASE_TEMPLATE("gru: matches torch.nn.GRU (2 layers, batch_first) golden values in float", Backend,
                   CPC_TEST_BACKENDS) {
  check_golden<gru<float, Backend>>("gru.txt");
}
TEST_CASE_TEMPLATE("gru: causality, outputs up to t bit-identical when later inputs change", Backend,
                   CPC_TEST_BACKENDS) {
  check_causality<gru<float, Backend>>();
}
TEST_CASE_TEMPLATE("gru: batch independence and permutation, bit-identical", Backend, CPC_TEST_BACKENDS) {
  check_batch_independence<gru<float, Backend>>();
}
TEST_CASE_TEMPLATE("gru: streaming in chunks equals one pass, bit-identical", Backend, CPC_TEST_BACKENDS) {
  check_streaming<gru<float, Backend>>();
}
TEST_CASE(
    "gru: an item's outputs are bit-identical in batches of 1 to 20 with 1 and 2 threads (GEMM tiles of 4, "
    "8, 12 rows)") {
  check_tile_invariance<gru<float>>();
}
TEST_CASE("gru: results bit-identical for 1 and 2 threads") {
  check_thread_count<gru<float>>();
}
TEST_CASE_TEMPLATE("gru: PyTorch parameter names, shapes and init", Backend, CPC_TEST_BACKENDS) {
  check_parameters<gru<float, Backend>>(3);
}
TEST_CASE_TEMPLATE("gru: shape and option errors", Backend, CPC_TEST_BACKENDS) {
  check_errors<gru<float, Backend>>("gru");
}
TEST_CASE("gru: cpu equals reference (1e-5) on odd sizes, one item, one step, 2 layers, no bias") {
  check_backends<gru>(1e-5);
}
TEST_CASE("gru: cpu equals reference (1e-5) from a given initial state, final state and gradients included") {
  check_backends_with_state<gru>(1e-5);
}

TEST_CASE_TEMPLATE("gru: one step by hand", Backend, CPC_TEST_BACKENDS) {
  // 1 input, 1 hidden unit, all weights 0.5, biases 0.1, h0 = 0.2, x = 1.
  rng gen(0);
  gru<double, Backend> layer({.input_size = 1, .hidden_size = 1}, gen);
  layer.for_each_parameter([](const std::string& name, parameter<double>& p) {
    p.value.fill(name.starts_with("weight") ? 0.5 : 0.1);
  });
  tensor3<double> x = {{{1.0}}}, h0 = {{{0.2}}}, y, hn;
  layer.forward(x, y, &h0, &hn);
  auto s = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  const double r = s(0.5 + 0.1 + 0.1 + 0.1), z = r, n = std::tanh(0.5 + 0.1 + r * (0.1 + 0.1));
  CHECK(y(0, 0, 0) == doctest::Approx((1 - z) * n + z * 0.2).epsilon(1e-14));
  CHECK(hn(0, 0, 0) == y(0, 0, 0));
}
