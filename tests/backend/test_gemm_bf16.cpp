// The bf16 path of the cpu GEMM (AMX tiles, cpc/core/precision.hpp): against a scalar reference
// that rounds both operands to bf16 (round to nearest even) and sums the exact products in fp32 in
// ascending k, for every A source (rows, columns, two strides), C given by rows, edge tiles,
// k across depth blocks, accumulation and column-panel slices; the convolution ops under
// `matmul_precision::bf16` (conv1d and conv2d); the precision setting and its errors. Where the build or the
// CPU has no AMX-BF16, the numeric cases check that bf16 is refused with the reason and return.
#include <doctest/doctest.h>

#include <cpc/backend/cpu/gemm.hpp>
#include <cpc/backend/ops.hpp>
#include <cpc/core/precision.hpp>
#include <cpc/core/random.hpp>
#include <cpc/core/threads.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

using namespace cpc;
namespace ck = cpc::cpu_kernels;

namespace {

// fp32 -> bf16 -> fp32, round to nearest even (finite inputs).
float round_bf16(float x) {
  auto bits = std::bit_cast<std::uint32_t>(x);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return std::bit_cast<float>(bits & 0xFFFF0000u);
}

std::vector<float> random_vector(std::size_t n, rng& gen) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(gen.uniform(-1.0, 1.0));
  return v;
}

bool bf16_available() {
  return bf16_matmul_unavailable_reason().empty();
}

// C (+)= A B with A(i, k) = a(i, k), B(k, j) = b[k * n + j], operands rounded to bf16, products
// summed in fp32 in ascending k (what TDPBF16PS computes); also the |A||B| scale per element.
template <class AFn>
void bf16_reference(std::size_t m, std::size_t n, std::size_t k, AFn&& a, const std::vector<float>& b,
                    float* c, std::ptrdiff_t ldc, bool accumulate, std::vector<double>& scale) {
  scale.assign(m * n, 0.0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      float acc =
          accumulate ? c[static_cast<std::ptrdiff_t>(i) * ldc + static_cast<std::ptrdiff_t>(j)] : 0.0f;
      for (std::size_t kk = 0; kk < k; ++kk) {
        const float p = round_bf16(a(i, kk)) * round_bf16(b[kk * n + j]);  // exact in fp32
        acc += p;
        scale[i * n + j] += std::abs(double(p));
      }
      c[static_cast<std::ptrdiff_t>(i) * ldc + static_cast<std::ptrdiff_t>(j)] = acc;
    }
}

// Largest |got - want| / (scale + 1) over the m x n elements.
double max_error(std::size_t m, std::size_t n, const float* got, const float* want, std::ptrdiff_t ldc,
                 const std::vector<double>& scale) {
  double worst = 0;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const auto at = static_cast<std::ptrdiff_t>(i) * ldc + static_cast<std::ptrdiff_t>(j);
      worst = std::max(worst, std::abs(double(got[at]) - double(want[at])) / (scale[i * n + j] + 1.0));
    }
  return worst;
}

}  // namespace

TEST_CASE("matmul precision: parse, names, scope, and bf16 refused with its reason where unavailable") {
  CHECK(parse_matmul_precision("fp32") == matmul_precision::fp32);
  CHECK(parse_matmul_precision("bf16") == matmul_precision::bf16);
  CHECK(to_string(matmul_precision::bf16) == "bf16");
  CHECK_THROWS_WITH_AS(parse_matmul_precision("fp16"), "matmul precision: expected fp32 or bf16, got 'fp16'",
                       config_error);
  CHECK(get_matmul_precision() == matmul_precision::fp32);  // the default
  const std::string why = bf16_matmul_unavailable_reason();
  MESSAGE("bf16 matmul: " << (why.empty() ? std::string("available") : why));
  if (why.empty()) {
    {
      matmul_precision_scope scope(matmul_precision::bf16);
      CHECK(get_matmul_precision() == matmul_precision::bf16);
    }
    CHECK(get_matmul_precision() == matmul_precision::fp32);
  } else {
    CHECK_THROWS_WITH_AS(set_matmul_precision(matmul_precision::bf16),
                         ("bf16 matmul precision is unavailable: " + why).c_str(), config_error);
    CHECK(get_matmul_precision() == matmul_precision::fp32);
    ck::packed_rhs<float> b;
    CHECK_THROWS_AS(b.use_bf16(true), config_error);
    CHECK_FALSE(b.bf16());
  }
}

TEST_CASE("gemm bf16: every A source equals the bf16-rounded fp32-sum reference (1e-6 of the scale)") {
  if (!bf16_available()) return;  // refused above with the reason
  rng gen(7);
  // (m, n, k): one row, edge tiles, k across the depth block (512) and not a multiple of 32.
  const std::vector<std::array<std::size_t, 3>> shapes{{1, 1, 1},     {5, 40, 33},     {32, 32, 32},
                                                       {97, 64, 700}, {40, 100, 1100}, {130, 33, 64}};
  for (const auto& entry : shapes)
    for (int source = 0; source < 3; ++source)
      for (int accumulate = 0; accumulate < 2; ++accumulate) {
        const std::size_t m = std::get<0>(entry), n = std::get<1>(entry), k = std::get<2>(entry);
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        CAPTURE(source);  // 0: rows (depth stride 1), 1: columns (row stride 1), 2: two strides
        CAPTURE(accumulate);
        // A stored with padding so that each source reads it through its own strides.
        const std::ptrdiff_t rs = source == 0 ? static_cast<std::ptrdiff_t>(k) + 3 : source == 1 ? 1 : 2;
        const std::ptrdiff_t ds = source == 0   ? 1
                                  : source == 1 ? static_cast<std::ptrdiff_t>(m) + 5
                                                : 2 * static_cast<std::ptrdiff_t>(m) + 1;
        const auto a = random_vector(static_cast<std::size_t>(rs * static_cast<std::ptrdiff_t>(m) +
                                                              ds * static_cast<std::ptrdiff_t>(k) + 1),
                                     gen);
        const auto b = random_vector(k * n, gen);
        auto a_at = [&](std::size_t i, std::size_t kk) {
          return a[static_cast<std::size_t>(static_cast<std::ptrdiff_t>(i) * rs +
                                            static_cast<std::ptrdiff_t>(kk) * ds)];
        };
        const auto ldc = static_cast<std::ptrdiff_t>(n) + 2;
        auto c = random_vector(m * static_cast<std::size_t>(ldc), gen), want = c;
        std::vector<double> scale;
        bf16_reference(m, n, k, a_at, b, want.data(), ldc, accumulate != 0, scale);
        ck::packed_rhs<float> bp;
        bp.use_bf16(true);
        bp.pack(b.data(), static_cast<std::ptrdiff_t>(n), 1, k, n);
        REQUIRE(bp.bf16());
        alignas(64) static std::array<float, ck::gemm_workspace_size<float>()> work;
        ck::gemm<float>(m, a.data(), rs, ds, bp, c.data(), ldc, accumulate != 0, work.data());
        CHECK(max_error(m, n, c.data(), want.data(), ldc, scale) <= 1e-6);
        // The padding between C rows is untouched.
        for (std::size_t i = 0; i < m; ++i)
          for (std::ptrdiff_t j = static_cast<std::ptrdiff_t>(n); j < ldc; ++j)
            CHECK(c[static_cast<std::size_t>(static_cast<std::ptrdiff_t>(i) * ldc + j)] ==
                  want[static_cast<std::size_t>(static_cast<std::ptrdiff_t>(i) * ldc + j)]);
      }
}

TEST_CASE(
    "gemm bf16: C given by rows (some redirected) and column-panel slices, as the convolutions call it") {
  if (!bf16_available()) return;
  rng gen(8);
  const std::size_t m = 75, n = 96, k = 200;
  const auto a = random_vector(m * k, gen), b = random_vector(k * n, gen);
  auto c = random_vector(m * n, gen), scratch = random_vector(3 * n, gen);
  // Rows 10, 11 and 60 of C live in `scratch` (as a convolution's edge rows do).
  auto c_row = [&](std::size_t i) {
    return i == 10   ? scratch.data()
           : i == 11 ? scratch.data() + n
           : i == 60 ? scratch.data() + 2 * n
                     : c.data() + i * n;
  };
  std::vector<float> want(m * n);
  for (std::size_t i = 0; i < m; ++i)
    std::copy_n(c_row(i), n, want.begin() + static_cast<std::ptrdiff_t>(i * n));
  std::vector<double> scale;
  bf16_reference(
      m, n, k, [&](std::size_t i, std::size_t kk) { return a[i * k + kk]; }, b, want.data(),
      static_cast<std::ptrdiff_t>(n), true, scale);
  ck::packed_rhs<float> bp;
  bp.use_bf16(true);
  bp.pack(b.data(), static_cast<std::ptrdiff_t>(n), 1, k, n);
  alignas(64) static std::array<float, ck::gemm_workspace_size<float>()> work;
  // Panels [0, 1) then [1, 3): the two slices together are the whole product.
  for (const auto& [p0, p1] : {std::pair<std::size_t, std::size_t>{0, 1}, {1, 3}})
    ck::gemm_rows_into<float>(
        m, [&](std::size_t i) { return a.data() + i * k; }, bp, c_row, static_cast<std::ptrdiff_t>(n), true,
        work.data(), p0, p1);
  std::vector<float> got(m * n);
  for (std::size_t i = 0; i < m; ++i)
    std::copy_n(c_row(i), n, got.begin() + static_cast<std::ptrdiff_t>(i * n));
  CHECK(max_error(m, n, got.data(), want.data(), static_cast<std::ptrdiff_t>(n), scale) <= 1e-6);
}

TEST_CASE(
    "conv1d under bf16: within bf16 rounding of fp32, not equal to it, and bit-identical on 1 and 2 "
    "threads") {
  if (!bf16_available()) return;
  rng gen(9);
  // The paper's second layer at a small batch: K = 8, stride 4, C_in -> 96 channels (GEMM path);
  // C_in = 64 packs d input's B straight from the weight (whole panels), 40 through a dense copy.
  for (const std::size_t c_in : {std::size_t(64), std::size_t(40)}) {
    CAPTURE(c_in);
    const ops::conv1d_shape s{
        .batch = 2, .t_in = 203, .c_in = c_in, .c_out = 96, .kernel = 8, .stride = 4, .padding = 2};
    const std::size_t t_out = s.t_out();
    const auto x = random_vector(s.batch * s.t_in * s.c_in, gen);
    const auto w = random_vector(s.c_out * s.c_in * s.kernel, gen);
    const auto dy = random_vector(s.batch * t_out * s.c_out, gen);
    struct result {
      std::vector<float> y, dx, dw;
    };
    auto run = [&](matmul_precision p, std::size_t threads) {
      set_num_threads(threads);
      matmul_precision_scope scope(p);
      ops::conv1d_workspace<cpu, float> ws;
      result r{std::vector<float>(s.batch * t_out * s.c_out), std::vector<float>(x.size(), 0.0f),
               std::vector<float>(w.size(), 0.0f)};
      ops::conv1d_forward<cpu>(
          ops::conv1d_forward_args<float>{
              .shape = s, .x = x.data(), .weight = w.data(), .bias = nullptr, .y = r.y.data()},
          ws);
      ops::conv1d_backward_params<cpu>(
          ops::conv1d_backward_params_args<float>{
              .shape = s, .x = x.data(), .dy = dy.data(), .d_weight = r.dw.data(), .d_bias = nullptr},
          ws);
      ops::conv1d_backward_input<cpu>(
          ops::conv1d_backward_input_args<float>{
              .shape = s, .dy = dy.data(), .weight = w.data(), .dx = r.dx.data()},
          ws);
      return r;
    };
    const result f32 = run(matmul_precision::fp32, 1), b1 = run(matmul_precision::bf16, 1),
                 b2 = run(matmul_precision::bf16, 2);
    set_num_threads(2);
    auto compare = [](const std::vector<float>& got, const std::vector<float>& ref, double scale) {
      double worst = 0;
      for (std::size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(double(got[i]) - double(ref[i])));
      return worst / scale;
    };
    // Each output sums products of magnitude <= 1 (mean 1/4 for uniform(-1, 1)): K x C_in of them
    // for y, K / stride x C_out for dx, frames for d weight. bf16's relative error per operand is
    // 2^-9, so |error| stays below ~2^-8 of the sum of |products|.
    const double y_err = compare(b1.y, f32.y, double(s.kernel * c_in) / 4.0),
                 dx_err = compare(b1.dx, f32.dx, double(s.kernel / s.stride * s.c_out) / 4.0),
                 dw_err = compare(b1.dw, f32.dw, double(s.batch * t_out) / 4.0);
    CHECK(y_err > 0);  // bf16 did run
    CHECK(y_err < 1.0 / 256);
    CHECK(dx_err > 0);
    CHECK(dx_err < 1.0 / 256);
    CHECK(dw_err > 0);
    CHECK(dw_err < 1.0 / 256);
    CHECK(b1.y == b2.y);
    CHECK(b1.dx == b2.dx);
    CHECK(b1.dw == b2.dw);
  }
}

TEST_CASE(
    "conv2d under bf16: within bf16 rounding of fp32, not equal to it, and bit-identical on 1 and 2 "
    "threads") {
  if (!bf16_available()) return;
  rng gen(10);
  // A residual block's 3 x 3 convolution of the image model at a small size: 16 -> 48 channels.
  const ops::conv2d_shape s{.batch = 3,
                            .height = 9,
                            .width = 7,
                            .in_channels = 16,
                            .out_channels = 48,
                            .kernel = 3,
                            .stride = 1,
                            .padding = 1};
  const std::size_t pixels = s.out_height() * s.out_width();
  const auto x = random_vector(s.batch * s.height * s.width * s.in_channels, gen);
  const auto w = random_vector(s.out_channels * s.window(), gen);
  const auto dy = random_vector(s.batch * pixels * s.out_channels, gen);
  struct result {
    std::vector<float> y, dx, dw;
  };
  auto run = [&](matmul_precision p, std::size_t threads) {
    set_num_threads(threads);
    matmul_precision_scope scope(p);
    ops::conv2d_workspace<cpu, float> ws;
    result r{std::vector<float>(s.batch * pixels * s.out_channels), std::vector<float>(x.size(), 0.0f),
             std::vector<float>(w.size(), 0.0f)};
    ops::conv2d_forward<cpu>(
        ops::conv2d_forward_args<float>{
            .shape = s, .x = x.data(), .weight = w.data(), .bias = nullptr, .y = r.y.data()},
        ws);
    ops::conv2d_backward<cpu>(ops::conv2d_backward_args<float>{.shape = s,
                                                               .x = x.data(),
                                                               .weight = w.data(),
                                                               .dy = dy.data(),
                                                               .dweight = r.dw.data(),
                                                               .dbias = nullptr,
                                                               .dx = r.dx.data()},
                              ws);
    return r;
  };
  const result f32 = run(matmul_precision::fp32, 1), b1 = run(matmul_precision::bf16, 1),
               b2 = run(matmul_precision::bf16, 2);
  set_num_threads(2);
  auto worst = [](const std::vector<float>& got, const std::vector<float>& ref) {
    double e = 0;
    for (std::size_t i = 0; i < got.size(); ++i) e = std::max(e, std::abs(double(got[i]) - double(ref[i])));
    return e;
  };
  // Sums of |products| (mean 1/4): window (144) for y and dx's 9 x 48 taps, batch x pixels for d weight.
  CHECK(worst(b1.y, f32.y) > 0);
  CHECK(worst(b1.y, f32.y) < double(s.window()) / 4.0 / 256);
  CHECK(worst(b1.dx, f32.dx) > 0);
  CHECK(worst(b1.dx, f32.dx) < double(9 * s.out_channels) / 4.0 / 256);
  CHECK(worst(b1.dw, f32.dw) > 0);
  CHECK(worst(b1.dw, f32.dw) < double(s.batch * pixels) / 4.0 / 256);
  CHECK(b1.y == b2.y);
  CHECK(b1.dx == b2.dx);
  CHECK(b1.dw == b2.dw);
}
