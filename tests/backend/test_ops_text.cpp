// cpu against reference for the text ops (backend/op/text.hpp): embedding lookup and its
// scatter-add backward (repeated ids, padding id, several column blocks), masked mean pooling and
// its backward (lengths 0, 1, partial and full; several row blocks). Outputs pre-filled with NaN.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <cmath>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("ops::embedding_*: cpu equals reference; padding rows zero and without gradient") {
  rng gen(4);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{300}, std::size_t{1031}}) {
    for (std::size_t dim : {std::size_t{1}, std::size_t{5}, std::size_t{37}}) {
      CAPTURE(n);
      CAPTURE(dim);
      const std::size_t V = 13;
      std::vector<std::int32_t> ids(n);
      for (auto& id : ids) id = static_cast<std::int32_t>(gen.uniform_int(V));  // includes 0 = padding
      std::vector<float> table(V * dim), dy(n * dim);
      for (auto& v : table) v = static_cast<float>(gen.uniform(-1.0, 1.0));
      for (auto& v : dy) v = static_cast<float>(gen.uniform(-1.0, 1.0));
      std::vector<float> y_cpu(n * dim, NAN), y_ref(n * dim, NAN);
      ops::embedding_forward<cpu>(ops::embedding_forward_args<float>{
          .n = n, .dim = dim, .padding = 0, .ids = ids.data(), .table = table.data(), .y = y_cpu.data()});
      ops::embedding_forward<reference>(ops::embedding_forward_args<float>{
          .n = n, .dim = dim, .padding = 0, .ids = ids.data(), .table = table.data(), .y = y_ref.data()});
      CHECK(y_cpu == y_ref);  // copies: exact
      bool padding_zero = true;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < dim; ++c)
          padding_zero = padding_zero && (ids[i] != 0 || y_ref[i * dim + c] == 0.0f);
      CHECK(padding_zero);

      std::vector<float> g_cpu(V * dim, 0.5f), g_ref(V * dim, 0.5f);  // accumulated onto 0.5
      ops::embedding_backward<cpu>(ops::embedding_backward_args<float>{.n = n,
                                                                       .dim = dim,
                                                                       .vocabulary = V,
                                                                       .padding = 0,
                                                                       .ids = ids.data(),
                                                                       .dy = dy.data(),
                                                                       .d_table = g_cpu.data()});
      ops::embedding_backward<reference>(ops::embedding_backward_args<float>{.n = n,
                                                                             .dim = dim,
                                                                             .vocabulary = V,
                                                                             .padding = 0,
                                                                             .ids = ids.data(),
                                                                             .dy = dy.data(),
                                                                             .d_table = g_ref.data()});
      CHECK(scaled_max_error(g_cpu, g_ref) < 1e-5);
      for (std::size_t c = 0; c < dim; ++c) CHECK(g_cpu[c] == 0.5f);  // the padding row untouched
    }
  }
}

TEST_CASE("ops::embedding_backward: without a padding id every token adds, in token order") {
  std::vector<std::int32_t> ids{2, 0, 2};
  std::vector<double> dy{1, 2, 3, 4, 5, 6}, g(6, 0.0), gr(6, 0.0);
  ops::embedding_backward<cpu>(ops::embedding_backward_args<double>{.n = 3,
                                                                    .dim = 2,
                                                                    .vocabulary = 3,
                                                                    .padding = -1,
                                                                    .ids = ids.data(),
                                                                    .dy = dy.data(),
                                                                    .d_table = g.data()});
  ops::embedding_backward<reference>(ops::embedding_backward_args<double>{.n = 3,
                                                                          .dim = 2,
                                                                          .vocabulary = 3,
                                                                          .padding = -1,
                                                                          .ids = ids.data(),
                                                                          .dy = dy.data(),
                                                                          .d_table = gr.data()});
  CHECK(g == std::vector<double>{3, 4, 0, 0, 6, 8});
  CHECK(gr == g);
}

TEST_CASE("ops::masked_mean_pool*: cpu equals reference; padding steps get zero gradient") {
  rng gen(8);
  for (std::size_t rows : {std::size_t{1}, std::size_t{7}, std::size_t{200}}) {
    const std::size_t Tn = 9, C = 5;
    CAPTURE(rows);
    std::vector<std::size_t> len(rows);
    for (std::size_t r = 0; r < rows; ++r) len[r] = r % 4 == 0 ? 0 : gen.uniform_int(Tn + 1);
    std::vector<float> x(rows * Tn * C), dy(rows * C);
    for (auto& v : x) v = static_cast<float>(gen.uniform(-1.0, 1.0));
    for (auto& v : dy) v = static_cast<float>(gen.uniform(-1.0, 1.0));
    std::vector<float> y_cpu(rows * C, NAN), y_ref(rows * C, NAN);
    ops::masked_mean_pool<cpu>(ops::masked_mean_pool_args<float>{
        .rows = rows, .time = Tn, .channels = C, .lengths = len.data(), .x = x.data(), .y = y_cpu.data()});
    ops::masked_mean_pool<reference>(ops::masked_mean_pool_args<float>{
        .rows = rows, .time = Tn, .channels = C, .lengths = len.data(), .x = x.data(), .y = y_ref.data()});
    CHECK(scaled_max_error(y_cpu, y_ref) < 1e-6);
    std::vector<float> dx_cpu(rows * Tn * C, NAN), dx_ref(rows * Tn * C, NAN);
    ops::masked_mean_pool_backward<cpu>(ops::masked_mean_pool_backward_args<float>{.rows = rows,
                                                                                   .time = Tn,
                                                                                   .channels = C,
                                                                                   .lengths = len.data(),
                                                                                   .dy = dy.data(),
                                                                                   .dx = dx_cpu.data()});
    ops::masked_mean_pool_backward<reference>(
        ops::masked_mean_pool_backward_args<float>{.rows = rows,
                                                   .time = Tn,
                                                   .channels = C,
                                                   .lengths = len.data(),
                                                   .dy = dy.data(),
                                                   .dx = dx_ref.data()});
    CHECK(scaled_max_error(dx_cpu, dx_ref) < 1e-6);
    bool zero_on_padding = true;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t t = len[r]; t < Tn; ++t)
        for (std::size_t c = 0; c < C; ++c)
          zero_on_padding = zero_on_padding && dx_cpu[(r * Tn + t) * C + c] == 0.0f;
    CHECK(zero_on_padding);
    if (rows >= 1) CHECK(y_cpu[0] == 0.0f);  // row 0 has length 0
  }
}
