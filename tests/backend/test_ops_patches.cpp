// cpu against reference for the patch ops (backend/op/patches.hpp): patch extraction on padded and
// unpadded grids, odd sizes, several channels, batch 1; mean pooling and its backward on more
// patches than one task block. Outputs start as NaN so that an unwritten element fails.
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
}  // namespace

TEST_CASE("ops::extract_patches: cpu equals reference exactly; padding is zero, every element written") {
  rng gen(1);
  struct patch_case {
    std::size_t batch, height, width, channels, size, stride, padding;
  };
  for (const auto& c : std::vector<patch_case>{{1, 1, 1, 1, 1, 1, 0},
                                               {1, 28, 28, 1, 8, 4, 2},
                                               {3, 10, 9, 2, 4, 3, 1},
                                               {2, 7, 12, 3, 5, 2, 0},
                                               {2, 5, 5, 4, 6, 5, 3}}) {
    CAPTURE(c.height);
    CAPTURE(c.size);
    const std::size_t rows = (c.height + 2 * c.padding - c.size) / c.stride + 1;
    const std::size_t cols = (c.width + 2 * c.padding - c.size) / c.stride + 1;
    const auto img = random_vector(c.batch * c.height * c.width * c.channels, gen);
    const std::size_t n = c.batch * rows * cols * c.size * c.size * c.channels;
    auto p_cpu = nan_vector(n), p_ref = nan_vector(n);
    ops::extract_patches_args<float> a{.batch = c.batch,
                                       .height = c.height,
                                       .width = c.width,
                                       .channels = c.channels,
                                       .size = c.size,
                                       .stride = c.stride,
                                       .padding = c.padding,
                                       .rows = rows,
                                       .cols = cols,
                                       .images = img.data(),
                                       .patches = p_cpu.data()};
    ops::extract_patches<cpu>(a);
    a.patches = p_ref.data();
    ops::extract_patches<reference>(a);
    CHECK(p_cpu == p_ref);  // a copy: exact (no NaN left, or == would fail)
    // Patch (0, 0) pixel (0, 0) sits in the padding when padding > 0.
    if (c.padding > 0) CHECK(p_cpu[0] == 0.0f);
  }
}

TEST_CASE("ops::patch_mean_pool and its backward: cpu equals reference (1e-6 of the scale)") {
  rng gen(2);
  for (const auto& entry :
       std::vector<std::array<std::size_t, 3>>{{1, 1, 1}, {1, 16, 64}, {130, 9, 5}, {65, 4, 70}}) {
    const auto& patches = std::get<0>(entry);
    const auto& pixels = std::get<1>(entry);
    const auto& channels = std::get<2>(entry);
    CAPTURE(patches);
    CAPTURE(pixels);
    const auto x = random_vector(patches * pixels * channels, gen);
    auto y_cpu = nan_vector(patches * channels), y_ref = y_cpu;
    ops::patch_mean_pool_args<float> a{
        .patches = patches, .pixels = pixels, .channels = channels, .x = x.data(), .y = y_cpu.data()};
    ops::patch_mean_pool<cpu>(a);
    a.y = y_ref.data();
    ops::patch_mean_pool<reference>(a);
    for (float v : y_cpu) REQUIRE(std::isfinite(v));
    CHECK(scaled_max_error(y_cpu, y_ref) < 1e-6);
    const auto dy = random_vector(patches * channels, gen);
    auto dx_cpu = nan_vector(x.size()), dx_ref = dx_cpu;
    ops::patch_mean_pool_backward_args<float> b{
        .patches = patches, .pixels = pixels, .channels = channels, .dy = dy.data(), .dx = dx_cpu.data()};
    ops::patch_mean_pool_backward<cpu>(b);
    b.dx = dx_ref.data();
    ops::patch_mean_pool_backward<reference>(b);
    for (float v : dx_cpu) REQUIRE(std::isfinite(v));
    CHECK(scaled_max_error(dx_cpu, dx_ref) < 1e-6);
    // The last pixel of patch 0, channel 0, gets dy / pixels.
    CHECK(dx_cpu[channels * (pixels - 1)] == doctest::Approx(dy[0] / static_cast<float>(pixels)));
  }
}
