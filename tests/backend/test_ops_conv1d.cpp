// cpu against reference for the 1-D convolution ops (backend/op/conv1d.hpp) on random shapes:
// both cpu paths (direct loop for K*C_in <= 16, GEMM otherwise), batch 1, strides above and below
// the kernel, padding up to the kernel, inputs no longer than the kernel, partial tiles and task
// blocks. Overwritten outputs start as NaN on both backends, accumulated ones as the same junk.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <cmath>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

template <class T>
std::vector<T> random_vector(std::size_t n, rng& gen) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(gen.uniform(-1.0, 1.0));
  return v;
}

template <class T>
bool all_finite(const std::vector<T>& v) {
  for (T x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// {batch, t_in, c_in, c_out, kernel, stride, padding}
const ops::conv1d_shape shapes[] = {
    {.batch = 1, .t_in = 1, .c_in = 1, .c_out = 1, .kernel = 1, .stride = 1, .padding = 0},
    {.batch = 2, .t_in = 23, .c_in = 1, .c_out = 3, .kernel = 10, .stride = 5, .padding = 3},     // direct
    {.batch = 1, .t_in = 2603, .c_in = 1, .c_out = 45, .kernel = 10, .stride = 5, .padding = 3},  // direct, 2
                                                                                                  // blocks
    {.batch = 3, .t_in = 37, .c_in = 4, .c_out = 33, .kernel = 4, .stride = 2, .padding = 1},  // direct, J =
                                                                                               // 16
    {.batch = 2, .t_in = 11, .c_in = 5, .c_out = 4, .kernel = 4, .stride = 2, .padding = 1},   // GEMM
    {.batch = 2, .t_in = 13, .c_in = 9, .c_out = 2, .kernel = 2, .stride = 3, .padding = 2},   // gaps
    {.batch = 2, .t_in = 4, .c_in = 2, .c_out = 3, .kernel = 7, .stride = 2, .padding = 3},    // all padding
    {.batch = 1, .t_in = 1100, .c_in = 16, .c_out = 130, .kernel = 4, .stride = 2, .padding = 1},  // blocks
    {.batch = 2, .t_in = 9, .c_in = 70, .c_out = 5, .kernel = 4, .stride = 1, .padding = 2},  // window > 256
    {.batch = 1, .t_in = 8, .c_in = 3, .c_out = 7, .kernel = 8, .stride = 1, .padding = 0},   // one output
};

template <class T>
void check_conv1d_ops(double tol) {
  rng gen(5);
  for (const auto& s : shapes)
    for (bool bias : {true, false}) {
      CAPTURE(s.batch);
      CAPTURE(s.t_in);
      CAPTURE(s.c_in);
      CAPTURE(s.c_out);
      CAPTURE(s.kernel);
      CAPTURE(s.stride);
      CAPTURE(s.padding);
      CAPTURE(bias);
      const std::size_t t_out = s.t_out();
      const auto x = random_vector<T>(s.batch * s.t_in * s.c_in, gen);
      const auto w = random_vector<T>(s.c_out * s.c_in * s.kernel, gen);
      const auto b = random_vector<T>(s.c_out, gen);
      const auto dy = random_vector<T>(s.batch * t_out * s.c_out, gen);
      ops::conv1d_workspace<cpu, T> ws_cpu;
      ops::conv1d_workspace<reference, T> ws_ref;

      std::vector<T> y_cpu(s.batch * t_out * s.c_out, T(NAN)), y_ref = y_cpu;
      ops::conv1d_forward_args<T> f{.shape = s,
                                    .x = x.data(),
                                    .weight = w.data(),
                                    .bias = bias ? b.data() : nullptr,
                                    .y = y_cpu.data()};
      ops::conv1d_forward<cpu>(f, ws_cpu);
      f.y = y_ref.data();
      ops::conv1d_forward<reference>(f, ws_ref);
      CHECK(all_finite(y_cpu));
      CHECK(all_finite(y_ref));
      CHECK(scaled_max_error(y_cpu, y_ref) < tol);

      // Parameter gradients accumulate onto the same junk on both backends.
      auto dw_cpu = random_vector<T>(w.size(), gen), dw_ref = dw_cpu;
      auto db_cpu = random_vector<T>(s.c_out, gen), db_ref = db_cpu;
      const auto db_before = db_cpu;
      ops::conv1d_backward_params_args<T> p{.shape = s,
                                            .x = x.data(),
                                            .dy = dy.data(),
                                            .d_weight = dw_cpu.data(),
                                            .d_bias = bias ? db_cpu.data() : nullptr};
      ops::conv1d_backward_params<cpu>(p, ws_cpu);
      p.d_weight = dw_ref.data();
      p.d_bias = bias ? db_ref.data() : nullptr;
      ops::conv1d_backward_params<reference>(p, ws_ref);
      CHECK(scaled_max_error(dw_cpu, dw_ref) < tol);
      CHECK(scaled_max_error(db_cpu, db_ref) < tol);
      if (!bias) {
        CHECK(db_cpu == db_before);  // null d_bias: nothing written
        CHECK(db_ref == db_before);
      }

      std::vector<T> dx_cpu(x.size(), T(NAN)), dx_ref = dx_cpu;
      ops::conv1d_backward_input_args<T> d{
          .shape = s, .dy = dy.data(), .weight = w.data(), .dx = dx_cpu.data()};
      ops::conv1d_backward_input<cpu>(d, ws_cpu);
      d.dx = dx_ref.data();
      ops::conv1d_backward_input<reference>(d, ws_ref);
      CHECK(all_finite(dx_cpu));
      CHECK(all_finite(dx_ref));
      CHECK(scaled_max_error(dx_cpu, dx_ref) < tol);
    }
}

}  // namespace

TEST_CASE("ops::conv1d_*: cpu equals reference in float (1e-5 of the scale) on random shapes") {
  check_conv1d_ops<float>(1e-5);
}

TEST_CASE("ops::conv1d_*: cpu equals reference in double (1e-12 of the scale) on random shapes") {
  check_conv1d_ops<double>(1e-12);
}

TEST_CASE("ops::conv1d_*: the reference kernels give hand-computed values") {
  // x = [1, 2, 3] (one channel), weight [1, 10] (one output channel, kernel 2), bias 0.5,
  // stride 1, padding 1: windows [0 1], [1 2], [2 3], [3 0].
  const ops::conv1d_shape s{
      .batch = 1, .t_in = 3, .c_in = 1, .c_out = 1, .kernel = 2, .stride = 1, .padding = 1};
  REQUIRE(s.t_out() == 4);
  const std::vector<double> x{1, 2, 3}, w{1, 10}, b{0.5}, dy{1, -1, 2, 3};
  std::vector<double> y(4);
  ops::conv1d_workspace<reference, double> ws;
  ops::conv1d_forward<reference>(
      ops::conv1d_forward_args<double>{
          .shape = s, .x = x.data(), .weight = w.data(), .bias = b.data(), .y = y.data()},
      ws);
  CHECK(y == std::vector<double>{10.5, 21.5, 32.5, 3.5});
  std::vector<double> dw{100, 0}, db{0};
  ops::conv1d_backward_params<reference>(
      ops::conv1d_backward_params_args<double>{
          .shape = s, .x = x.data(), .dy = dy.data(), .d_weight = dw.data(), .d_bias = db.data()},
      ws);
  // dw[0] = sum_t dy[t] x[t - 1] = -1 + 4 + 9, dw[1] = sum_t dy[t] x[t] = 1 - 2 + 6; db = 5.
  CHECK(dw == std::vector<double>{112, 5});
  CHECK(db == std::vector<double>{5});
  std::vector<double> dx(3, NAN);
  ops::conv1d_backward_input<reference>(
      ops::conv1d_backward_input_args<double>{
          .shape = s, .dy = dy.data(), .weight = w.data(), .dx = dx.data()},
      ws);
  // dx[u] = dy[u] * w[1] + dy[u + 1] * w[0].
  CHECK(dx == std::vector<double>{9, -8, 23});
}
