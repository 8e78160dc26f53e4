// cpu against reference for the dense ops (backend/op/blas.hpp) on random shapes: edge tiles,
// odd sizes, one row, strided and transposed operands, accumulation.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <vector>

#include "support/backend_parity.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

std::vector<float> random_vector(std::size_t n, rng& gen) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(gen.uniform(-1.0, 1.0));
  return v;
}

}  // namespace

TEST_CASE("ops::gemm: cpu equals reference (to 1e-5 of the scale) on random shapes, strides and transposes") {
  rng gen(1);
  // (m, n, k): one row, edge tiles in both directions, a k above the depth block (256), sizes of 1.
  const std::vector<std::array<std::size_t, 3>> shapes{
      {1, 1, 1}, {1, 70, 37}, {13, 33, 1}, {25, 32, 300}, {12, 64, 8}, {100, 7, 513}, {37, 129, 64}};
  for (const auto& entry : shapes)
    for (int a_transposed = 0; a_transposed < 2; ++a_transposed)
      for (int b_transposed = 0; b_transposed < 2; ++b_transposed)
        for (int accumulate = 0; accumulate < 2; ++accumulate) {
          const std::size_t m = std::get<0>(entry);
          const std::size_t n = std::get<1>(entry);
          const std::size_t k = std::get<2>(entry);
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(a_transposed);
          CAPTURE(b_transposed);
          CAPTURE(accumulate);
          const auto a = random_vector(m * k, gen), b = random_vector(k * n, gen);
          const std::ptrdiff_t ldc = static_cast<std::ptrdiff_t>(n) + 3;  // C rows padded
          auto c_cpu = random_vector(m * static_cast<std::size_t>(ldc), gen), c_ref = c_cpu;
          ops::gemm_args<float> g{.m = m,
                                  .n = n,
                                  .k = k,
                                  .a = a.data(),
                                  .a_row_stride = a_transposed ? 1 : static_cast<std::ptrdiff_t>(k),
                                  .a_depth_stride = a_transposed ? static_cast<std::ptrdiff_t>(m) : 1,
                                  .b = b.data(),
                                  .b_row_stride = b_transposed ? 1 : static_cast<std::ptrdiff_t>(n),
                                  .b_col_stride = b_transposed ? static_cast<std::ptrdiff_t>(k) : 1,
                                  .c = c_cpu.data(),
                                  .ldc = ldc,
                                  .accumulate = accumulate != 0};
          ops::gemm_workspace<cpu, float> ws_cpu;
          ops::gemm<cpu>(g, ws_cpu);
          g.c = c_ref.data();
          ops::gemm_workspace<reference, float> ws_ref;
          ops::gemm<reference>(g, ws_ref);
          CHECK(scaled_max_error(c_cpu, c_ref) < 1e-5);
          // The padding columns of C are never written.
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = n; j < static_cast<std::size_t>(ldc); ++j)
              CHECK(c_cpu[i * static_cast<std::size_t>(ldc) + j] ==
                    c_ref[i * static_cast<std::size_t>(ldc) + j]);
        }
}

TEST_CASE("ops::gemm: k = 0 gives C = 0, or leaves C with accumulate, on both backends") {
  std::vector<float> c{1, 2, 3, 4};
  ops::gemm_args<float> g{.m = 2,
                          .n = 2,
                          .k = 0,
                          .a = nullptr,
                          .a_row_stride = 0,
                          .b = nullptr,
                          .b_row_stride = 0,
                          .c = c.data(),
                          .ldc = 2,
                          .accumulate = true};
  ops::gemm_workspace<cpu, float> ws;
  ops::gemm<cpu>(g, ws);
  CHECK(c == std::vector<float>{1, 2, 3, 4});
  g.accumulate = false;
  ops::gemm<cpu>(g, ws);
  CHECK(c == std::vector<float>{0, 0, 0, 0});
}

TEST_CASE("ops: add_row_vector, sum_rows, axpby, fill and copy - cpu equals reference") {
  rng gen(2);
  for (const auto& entry :
       std::vector<std::pair<std::size_t, std::size_t>>{{1, 1}, {3, 17}, {300, 70}, {1000, 130}}) {
    const auto& rows = std::get<0>(entry);
    const auto& cols = std::get<1>(entry);
    CAPTURE(rows);
    CAPTURE(cols);
    const auto v = random_vector(cols, gen), x = random_vector(rows * cols, gen);
    auto y_cpu = random_vector(rows * cols, gen), y_ref = y_cpu;
    const auto ld = static_cast<std::ptrdiff_t>(cols);
    ops::add_row_vector<cpu>(ops::add_row_vector_args<float>{rows, cols, v.data(), y_cpu.data(), ld});
    ops::add_row_vector<reference>(ops::add_row_vector_args<float>{rows, cols, v.data(), y_ref.data(), ld});
    CHECK(y_cpu == y_ref);  // one addition per element: exact on both

    auto s_cpu = random_vector(cols, gen), s_ref = s_cpu;
    ops::sum_rows<cpu>(ops::sum_rows_args<float>{rows, cols, x.data(), ld, s_cpu.data()});
    ops::sum_rows<reference>(ops::sum_rows_args<float>{rows, cols, x.data(), ld, s_ref.data()});
    CHECK(scaled_max_error(s_cpu, s_ref) < 1e-5);

    const std::size_t n = rows * cols;
    auto a_cpu = random_vector(n, gen), a_ref = a_cpu;
    ops::axpby<cpu>(ops::axpby_args<float>{n, 0.5f, x.data(), -2.0f, a_cpu.data()});
    ops::axpby<reference>(ops::axpby_args<float>{n, 0.5f, x.data(), -2.0f, a_ref.data()});
    CHECK(scaled_max_error(a_cpu, a_ref) < 1e-6);
    std::vector<float> nan_cpu(n, std::nanf("")), nan_ref = nan_cpu;
    ops::axpby<cpu>(ops::axpby_args<float>{n, 3.0f, x.data(), 0.0f, nan_cpu.data()});
    ops::axpby<reference>(ops::axpby_args<float>{n, 3.0f, x.data(), 0.0f, nan_ref.data()});
    CHECK(nan_cpu == nan_ref);  // beta = 0 overwrites NaN

    std::vector<float> f_cpu(n, 1.0f), f_ref(n, 2.0f);
    ops::fill<cpu>(ops::fill_args<float>{n, 7.0f, f_cpu.data()});
    ops::fill<reference>(ops::fill_args<float>{n, 7.0f, f_ref.data()});
    CHECK(f_cpu == f_ref);
    ops::copy<cpu>(ops::copy_args<float>{n, x.data(), f_cpu.data()});
    ops::copy<reference>(ops::copy_args<float>{n, x.data(), f_ref.data()});
    CHECK(f_cpu == x);
    CHECK(f_ref == x);
  }
}
