#include <doctest/doctest.h>

#include <cpc/layers/conv2d.hpp>

#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/thread_invariance.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {
// Plain NHWC convolution in double, written here independently of either backend.
template <class Layer>
tensor4<double> reference_conv(const tensor4<double>& x, Layer& layer) {
  const auto& o = layer.config();
  const std::size_t B = x.shape()[0], H = x.shape()[1], W = x.shape()[2];
  const std::size_t Ho = layer.output_size(H), Wo = layer.output_size(W), k = o.kernel;
  tensor4<double> y = xt::zeros<double>({B, Ho, Wo, o.out_channels});
  const auto& w = layer.weight().value;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t i = 0; i < Ho; ++i)
      for (std::size_t j = 0; j < Wo; ++j)
        for (std::size_t f = 0; f < o.out_channels; ++f) {
          double s = o.bias ? layer.bias().value(f) : 0.0;
          for (std::size_t c = 0; c < o.in_channels; ++c)
            for (std::size_t u = 0; u < k; ++u)
              for (std::size_t v = 0; v < k; ++v) {
                const auto r =
                    static_cast<std::ptrdiff_t>(i * o.stride + u) - static_cast<std::ptrdiff_t>(o.padding);
                const auto q =
                    static_cast<std::ptrdiff_t>(j * o.stride + v) - static_cast<std::ptrdiff_t>(o.padding);
                if (r < 0 || q < 0 || r >= static_cast<std::ptrdiff_t>(H) ||
                    q >= static_cast<std::ptrdiff_t>(W))
                  continue;
                s += w(f, c, u, v) * x(b, r, q, c);
              }
          y(b, i, j, f) = s;
        }
  return y;
}

template <class Backend>
void check_gradients(conv2d_options opt, std::array<std::size_t, 4> shape, std::uint64_t seed) {
  rng gen(seed);
  conv2d<double, Backend> layer(opt, gen);
  tensor4<double> x = xt::zeros<double>(shape), y, dx;
  fill_uniform(x, gen);
  layer.forward(x, y);
  CHECK(xt::allclose(y, reference_conv(x, layer), 1e-12, 1e-12));
  tensor4<double> r = xt::zeros<double>(y.shape());
  fill_uniform(r, gen);
  layer.backward(x, y, r, &dx);
  auto loss = [&] {
    tensor4<double> yy;
    layer.forward(x, yy);
    return project(yy, r);
  };
  CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
  auto& w = layer.weight();
  CHECK(gradient_error(loss, w.value.data(), w.size(), w.grad.data()) < 1e-6);
  if (opt.bias) {
    auto& b = layer.bias();
    CHECK(gradient_error(loss, b.value.data(), b.size(), b.grad.data()) < 1e-6);
  }
}
}  // namespace

TEST_CASE_TEMPLATE("conv2d: forward matches a direct loop and finite differences hold for x, weight, bias",
                   Backend, CPC_TEST_BACKENDS) {
  SUBCASE("3x3, stride 1, same padding") {
    check_gradients<Backend>({.in_channels = 3, .out_channels = 4, .kernel = 3, .stride = 1, .padding = 1},
                             {2, 5, 6, 3}, 1);
  }
  SUBCASE("3x3, stride 2, padding 1, odd sizes") {
    check_gradients<Backend>({.in_channels = 2, .out_channels = 5, .kernel = 3, .stride = 2, .padding = 1},
                             {3, 7, 4, 2}, 2);
  }
  SUBCASE("4x4, stride 3, no padding, no bias") {
    check_gradients<Backend>(
        {.in_channels = 1, .out_channels = 3, .kernel = 4, .stride = 3, .padding = 0, .bias = false},
        {2, 10, 8, 1}, 3);
  }
  SUBCASE("1x1") {
    check_gradients<Backend>({.in_channels = 4, .out_channels = 2, .kernel = 1}, {2, 3, 3, 4}, 4);
  }
}

TEST_CASE_TEMPLATE("conv2d: a batch of many images gives the same result as one image at a time", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(7);
  conv2d<float, Backend> layer({.in_channels = 3, .out_channels = 8, .kernel = 3, .padding = 1}, gen);
  // 16x16 outputs = 256 pixels: on cpu one image per task group, 37 groups in several d weight parts.
  tensor4<float> x = xt::zeros<float>({37, 16, 16, 3}), y, dy, dx;
  fill_uniform(x, gen);
  layer.forward(x, y);
  dy = xt::zeros<float>(y.shape());
  fill_uniform(dy, gen);
  layer.backward(x, y, dy, &dx);
  const array<float> dw_all = layer.weight().grad;
  layer.weight().zero_grad();
  layer.bias().zero_grad();
  for (std::size_t b = 0; b < 37; ++b) {
    tensor4<float> xb = xt::view(x, xt::range(b, b + 1)), yb, dyb = xt::view(dy, xt::range(b, b + 1)), dxb;
    layer.forward(xb, yb);
    CHECK(xt::allclose(yb, xt::view(y, xt::range(b, b + 1)), 1e-5, 1e-6));
    layer.backward(xb, yb, dyb, &dxb);
    CHECK(xt::allclose(dxb, xt::view(dx, xt::range(b, b + 1)), 1e-5, 1e-6));
  }
  CHECK(xt::allclose(layer.weight().grad, dw_all, 1e-4, 1e-4));
}

TEST_CASE_TEMPLATE("conv2d: matches torch.nn.Conv2d golden values in float (stride 2, padding 1)", Backend,
                   CPC_TEST_BACKENDS) {
  auto g = read_golden("image.txt");
  rng gen(0);
  conv2d<float, Backend> layer({.in_channels = 2, .out_channels = 3, .kernel = 3, .stride = 2, .padding = 1},
                               gen);
  assign(layer.weight().value, g["conv.weight"]);
  assign(layer.bias().value, g["conv.bias"]);
  tensor4<float> x, y, dy, dx;
  assign(x, g["conv.x"]);
  assign(dy, g["conv.dy"]);
  // Junk in the outputs proves that the kernels overwrite them.
  y = xt::ones<float>({2, 3, 2, 3}) * 1e9f;
  dx = xt::ones<float>(x.shape()) * 1e9f;
  layer.forward(x, y);
  CHECK(max_relative_error(y, g["conv.y"]) < 1e-4);
  layer.backward(x, y, dy, &dx);
  CHECK(max_relative_error(dx, g["conv.dx"]) < 1e-4);
  CHECK(max_relative_error(layer.weight().grad, g["conv.dweight"]) < 1e-4);
  CHECK(max_relative_error(layer.bias().grad, g["conv.dbias"]) < 1e-4);
}

TEST_CASE("conv2d: results do not depend on the thread count (cpu)") {
  rng gen(9);
  // 70 output channels: a partial GEMM column panel; 80 images of 8x8 outputs: many task groups
  // (AVX-512: 27 groups of 3 images) and several partial sums of d weight (6 parts).
  conv2d<float> layer({.in_channels = 8, .out_channels = 70, .kernel = 3, .padding = 1}, gen);
  tensor4<float> x = xt::zeros<float>({80, 8, 8, 8});
  fill_uniform(x, gen);
  check_thread_invariance(layer, x);
}

TEST_CASE_TEMPLATE("conv2d: bad inputs throw typed errors naming the shapes", Backend, CPC_TEST_BACKENDS) {
  rng gen(1);
  conv2d<float, Backend> layer({.in_channels = 3, .out_channels = 2, .kernel = 3}, gen);
  tensor4<float> x = xt::zeros<float>({2, 5, 5, 4}), y;
  CHECK_THROWS_WITH_AS(layer.forward(x, y), "conv2d forward input: expected [*, *, *, 3], got [2, 5, 5, 4]",
                       shape_error);
  tensor4<float> small = xt::zeros<float>({1, 2, 5, 3});
  CHECK_THROWS_WITH_AS(
      layer.forward(small, y),
      "conv2d forward input: expected [*, >= 3, >= 3, 3] (kernel 3, padding 0), got [1, 2, 5, 3]",
      shape_error);
  tensor4<float> ok = xt::zeros<float>({1, 5, 5, 3}), dy = xt::zeros<float>({1, 2, 3, 2}), dx;
  layer.forward(ok, y);
  CHECK_THROWS_WITH_AS(layer.backward(ok, y, dy, &dx),
                       "conv2d backward output gradient: expected [1, 3, 3, 2], got [1, 2, 3, 2]",
                       shape_error);
  CHECK_THROWS_AS((conv2d<float, Backend>({.in_channels = 1, .out_channels = 1, .kernel = 0}, gen)),
                  config_error);
}

TEST_CASE_TEMPLATE("conv2d: PyTorch default init bound 1/sqrt(C_in * k * k)", Backend, CPC_TEST_BACKENDS) {
  rng gen(2);
  conv2d<double, Backend> layer({.in_channels = 4, .out_channels = 64, .kernel = 5}, gen);
  const double bound = 0.1;
  CHECK(xt::amax(xt::abs(layer.weight().value))() <= bound);
  CHECK(xt::amax(xt::abs(layer.weight().value))() > 0.95 * bound);
  CHECK(xt::amax(xt::abs(layer.bias().value))() <= bound);
}

TEST_CASE(
    "conv2d: cpu equals reference (1e-5) on strides, paddings, odd sizes, batch 1, with and without bias") {
  rng gen(23);
  struct shape_case {
    std::array<std::size_t, 4> x;  // [B, H, W, C_in]
    conv2d_options opt;
  };
  const std::vector<shape_case> cases{
      {{1, 1, 1, 1}, {.in_channels = 1, .out_channels = 1, .kernel = 1}},
      {{1, 5, 7, 3}, {.in_channels = 3, .out_channels = 5, .kernel = 3, .stride = 1, .padding = 1}},
      {{3, 9, 6, 2}, {.in_channels = 2, .out_channels = 7, .kernel = 3, .stride = 2, .padding = 1}},
      {{2, 10, 11, 4}, {.in_channels = 4, .out_channels = 3, .kernel = 4, .stride = 3, .padding = 2}},
      {{2, 4, 4, 5}, {.in_channels = 5, .out_channels = 70, .kernel = 5, .stride = 1, .padding = 2}},
      // 300 images of 4x4 outputs: many task groups (AVX-512: 20 of 15 images) and d weight parts (5).
      {{300, 4, 4, 3}, {.in_channels = 3, .out_channels = 9, .kernel = 3, .stride = 1, .padding = 1}},
  };
  for (const auto& c : cases)
    for (bool bias : {true, false}) {
      CAPTURE(c.x[0]);
      CAPTURE(c.x[1]);
      CAPTURE(c.opt.kernel);
      CAPTURE(bias);
      tensor4<float> x = xt::zeros<float>(c.x);
      fill_uniform(x, gen);
      conv2d_options opt = c.opt;
      opt.bias = bias;
      check_layer_backends<conv2d, float>(opt, x, 1e-5);
    }
}
