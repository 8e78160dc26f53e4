#include "recurrent_checks.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("gru: finite differences in double, 1 layer, zero initial state") {
  check_gradients<gru<double>>(1, true, false);
}
TEST_CASE("gru: finite differences in double, 2 layers, given initial state") {
  check_gradients<gru<double>>(2, true, true);
}
TEST_CASE("gru: finite differences in double, 2 layers, no bias") {
  check_gradients<gru<double>>(2, false, false);
}
TEST_CASE("gru: matches torch.nn.GRU (2 layers, batch_first) golden values in float") {
  check_golden<gru<float>>("gru.txt");
}
TEST_CASE("gru: causality, outputs up to t bit-identical when later inputs change") {
  check_causality<gru<float>>();
}
TEST_CASE("gru: batch independence and permutation, bit-identical") {
  check_batch_independence<gru<float>>();
}
TEST_CASE("gru: streaming in chunks equals one pass, bit-identical") {
  check_streaming<gru<float>>();
}
TEST_CASE("gru: results bit-identical for 1 and 2 threads") {
  check_thread_count<gru<float>>();
}
TEST_CASE("gru: PyTorch parameter names, shapes and init") {
  check_parameters<gru<float>>(3);
}
TEST_CASE("gru: shape and option errors") {
  check_errors<gru<float>>("gru");
}

TEST_CASE("gru: one step by hand") {
  // 1 input, 1 hidden unit, all weights 0.5, biases 0.1, h0 = 0.2, x = 1.
  rng gen(0);
  gru<double> layer({.input_size = 1, .hidden_size = 1}, gen);
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
