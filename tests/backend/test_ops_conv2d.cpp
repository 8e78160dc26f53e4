// cpu against reference for the conv2d ops (backend/op/conv2d.hpp) on random shapes: strides,
// paddings, kernels larger than the stride, odd sizes, batch 1, output channels that leave a
// partial GEMM panel, batches of many task groups and several d weight parts; accumulation into
// d weight and d bias; null bias / d bias / dx.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

std::vector<float> random_vector(std::size_t n, rng& gen) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(gen.uniform(-1.0, 1.0));
  return v;
}

std::vector<float> nan_vector(std::size_t n) {
  return std::vector<float>(n, std::nanf(""));
}

const std::vector<ops::conv2d_shape>& shapes() {
  static const std::vector<ops::conv2d_shape> s{
      {.batch = 1, .height = 1, .width = 1, .in_channels = 1, .out_channels = 1, .kernel = 1},
      {.batch = 1, .height = 5, .width = 7, .in_channels = 3, .out_channels = 5, .kernel = 3, .padding = 1},
      {.batch = 3,
       .height = 8,
       .width = 8,
       .in_channels = 1,
       .out_channels = 64,
       .kernel = 3,
       .stride = 2,
       .padding = 1},
      {.batch = 2,
       .height = 10,
       .width = 11,
       .in_channels = 4,
       .out_channels = 3,
       .kernel = 4,
       .stride = 3,
       .padding = 2},
      {.batch = 2, .height = 4, .width = 4, .in_channels = 5, .out_channels = 70, .kernel = 5, .padding = 2},
      {.batch = 2,
       .height = 3,
       .width = 9,
       .in_channels = 2,
       .out_channels = 3,
       .kernel = 3,
       .stride = 1,
       .padding = 0},
      // 300 images of 4x4 outputs: many task groups (AVX-512: 20 of 15 images) and d weight parts (5).
      {.batch = 300, .height = 4, .width = 4, .in_channels = 3, .out_channels = 9, .kernel = 3, .padding = 1},
  };
  return s;
}

}  // namespace

TEST_CASE(
    "ops::conv2d_forward: cpu equals reference (1e-5 of the scale), every output written, with and without "
    "bias") {
  rng gen(1);
  for (const auto& s : shapes())
    for (bool bias : {true, false}) {
      CAPTURE(s.batch);
      CAPTURE(s.height);
      CAPTURE(s.kernel);
      CAPTURE(s.stride);
      CAPTURE(bias);
      const std::size_t ny = s.batch * s.out_height() * s.out_width() * s.out_channels;
      const auto x = random_vector(s.batch * s.height * s.width * s.in_channels, gen);
      const auto w = random_vector(s.out_channels * s.window(), gen);
      const auto b = random_vector(s.out_channels, gen);
      auto y_cpu = nan_vector(ny), y_ref = nan_vector(ny);
      ops::conv2d_forward_args<float> a{.shape = s,
                                        .x = x.data(),
                                        .weight = w.data(),
                                        .bias = bias ? b.data() : nullptr,
                                        .y = y_cpu.data()};
      ops::conv2d_workspace<cpu, float> ws_cpu;
      ops::conv2d_forward<cpu>(a, ws_cpu);
      a.y = y_ref.data();
      ops::conv2d_workspace<reference, float> ws_ref;
      ops::conv2d_forward<reference>(a, ws_ref);
      for (float v : y_cpu) REQUIRE(std::isfinite(v));
      CHECK(scaled_max_error(y_cpu, y_ref) < 1e-5);
      // A second call with the workspace warm gives the same bits.
      auto y_again = nan_vector(ny);
      a.y = y_again.data();
      ops::conv2d_forward<cpu>(a, ws_cpu);
      CHECK(y_again == y_cpu);
    }
}

TEST_CASE(
    "ops::conv2d_backward: cpu equals reference (1e-5 of the scale); d weight and d bias accumulate, dx is "
    "overwritten") {
  rng gen(2);
  for (const auto& s : shapes())
    for (int variant = 0; variant < 3; ++variant) {  // 0: everything, 1: no bias, 2: no dx
      CAPTURE(s.batch);
      CAPTURE(s.height);
      CAPTURE(s.kernel);
      CAPTURE(s.stride);
      CAPTURE(variant);
      const std::size_t nx = s.batch * s.height * s.width * s.in_channels;
      const auto x = random_vector(nx, gen);
      const auto w = random_vector(s.out_channels * s.window(), gen);
      const auto dy = random_vector(s.batch * s.out_height() * s.out_width() * s.out_channels, gen);
      auto dw_cpu = random_vector(w.size(), gen), dw_ref = dw_cpu;  // accumulated into
      auto db_cpu = random_vector(s.out_channels, gen), db_ref = db_cpu;
      auto dx_cpu = nan_vector(nx), dx_ref = nan_vector(nx);
      const bool with_bias = variant != 1, with_dx = variant != 2;
      ops::conv2d_backward_args<float> a{.shape = s,
                                         .x = x.data(),
                                         .weight = w.data(),
                                         .dy = dy.data(),
                                         .dweight = dw_cpu.data(),
                                         .dbias = with_bias ? db_cpu.data() : nullptr,
                                         .dx = with_dx ? dx_cpu.data() : nullptr};
      ops::conv2d_workspace<cpu, float> ws_cpu;
      ops::conv2d_backward<cpu>(a, ws_cpu);
      a.dweight = dw_ref.data();
      a.dbias = with_bias ? db_ref.data() : nullptr;
      a.dx = with_dx ? dx_ref.data() : nullptr;
      ops::conv2d_workspace<reference, float> ws_ref;
      ops::conv2d_backward<reference>(a, ws_ref);
      CHECK(scaled_max_error(dw_cpu, dw_ref) < 1e-5);
      CHECK(scaled_max_error(db_cpu, db_ref) < 1e-5);
      if (!with_bias) CHECK(db_cpu == db_ref);  // untouched on both
      if (with_dx) {
        for (float v : dx_cpu) REQUIRE(std::isfinite(v));
        CHECK(scaled_max_error(dx_cpu, dx_ref) < 1e-5);
      } else {
        for (float v : dx_cpu) CHECK(std::isnan(v));  // not written
      }
    }
}

TEST_CASE("ops::conv2d: cpu y and dx of an image do not depend on the rest of the batch (bit for bit)") {
  rng gen(3);
  const ops::conv2d_shape s{
      .batch = 300, .height = 4, .width = 4, .in_channels = 3, .out_channels = 9, .kernel = 3, .padding = 1};
  const auto x = random_vector(s.batch * s.height * s.width * s.in_channels, gen);
  const auto w = random_vector(s.out_channels * s.window(), gen);
  const auto dy = random_vector(s.batch * s.out_height() * s.out_width() * s.out_channels, gen);
  const std::size_t per_y = s.out_height() * s.out_width() * s.out_channels;
  const std::size_t per_x = s.height * s.width * s.in_channels;
  std::vector<float> y(s.batch * per_y), dx(x.size()), dw(w.size());
  ops::conv2d_workspace<cpu, float> ws;
  ops::conv2d_forward<cpu>(
      ops::conv2d_forward_args<float>{.shape = s, .x = x.data(), .weight = w.data(), .y = y.data()}, ws);
  ops::conv2d_backward<cpu>(ops::conv2d_backward_args<float>{.shape = s,
                                                             .x = x.data(),
                                                             .weight = w.data(),
                                                             .dy = dy.data(),
                                                             .dweight = dw.data(),
                                                             .dx = dx.data()},
                            ws);
  // First and last images of task groups (AVX-512: groups of 15 images, AVX2: 7).
  for (std::size_t b : {0, 6, 7, 14, 15, 299}) {
    CAPTURE(b);
    ops::conv2d_shape one = s;
    one.batch = 1;
    std::vector<float> y_one(per_y), dx_one(per_x), dw_one(w.size());
    ops::conv2d_forward<cpu>(
        ops::conv2d_forward_args<float>{
            .shape = one, .x = x.data() + b * per_x, .weight = w.data(), .y = y_one.data()},
        ws);
    ops::conv2d_backward<cpu>(ops::conv2d_backward_args<float>{.shape = one,
                                                               .x = x.data() + b * per_x,
                                                               .weight = w.data(),
                                                               .dy = dy.data() + b * per_y,
                                                               .dweight = dw_one.data(),
                                                               .dx = dx_one.data()},
                              ws);
    CHECK(std::equal(y_one.begin(), y_one.end(), y.begin() + static_cast<std::ptrdiff_t>(b * per_y)));
    CHECK(std::equal(dx_one.begin(), dx_one.end(), dx.begin() + static_cast<std::ptrdiff_t>(b * per_x)));
  }
}

TEST_CASE("ops::zero_kernel_rows: rows from keep_rows on are zero, the rest untouched, on both backends") {
  rng gen(4);
  for (const auto& entry :
       std::vector<std::array<std::size_t, 3>>{{1, 1, 1}, {6, 3, 2}, {5, 5, 3}, {2, 4, 0}}) {
    const auto& slices = std::get<0>(entry);
    const auto& k = std::get<1>(entry);
    const auto& keep = std::get<2>(entry);
    CAPTURE(k);
    CAPTURE(keep);
    const auto w0 = random_vector(slices * k * k, gen);
    auto w_cpu = w0, w_ref = w0;
    ops::zero_kernel_rows<cpu>(ops::zero_kernel_rows_args<float>{
        .slices = slices, .kernel = k, .keep_rows = keep, .w = w_cpu.data()});
    ops::zero_kernel_rows<reference>(ops::zero_kernel_rows_args<float>{
        .slices = slices, .kernel = k, .keep_rows = keep, .w = w_ref.data()});
    CHECK(w_cpu == w_ref);
    for (std::size_t s = 0; s < slices; ++s)
      for (std::size_t u = 0; u < k; ++u)
        for (std::size_t v = 0; v < k; ++v) {
          const std::size_t i = (s * k + u) * k + v;
          CHECK(w_cpu[i] == (u < keep ? w0[i] : 0.0f));
        }
  }
}
