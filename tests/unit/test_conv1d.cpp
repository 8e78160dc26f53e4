#include <doctest/doctest.h>

#include <cpc/layers/conv1d.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include <thread>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/thread_invariance.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

// Straightforward reference: y[b,t,o] = bias[o] + sum_{c,k} W[o,c,k] x[b, t*s + k - p, c].
tensor3<double> reference_conv(const tensor3<double>& x, const array<double>& w, const array<double>* bias,
                               std::size_t s, std::size_t p) {
  const std::size_t batch = x.shape()[0], t_in = x.shape()[1], c_in = x.shape()[2];
  const std::size_t c_out = w.shape()[0], kk = w.shape()[2];
  const std::size_t t_out = (t_in + 2 * p - kk) / s + 1;
  tensor3<double> y = xt::zeros<double>({batch, t_out, c_out});
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t t = 0; t < t_out; ++t)
      for (std::size_t o = 0; o < c_out; ++o) {
        double acc = bias ? (*bias)(o) : 0.0;
        for (std::size_t k = 0; k < kk; ++k) {
          const auto u = static_cast<std::ptrdiff_t>(t * s + k) - static_cast<std::ptrdiff_t>(p);
          if (u < 0 || u >= static_cast<std::ptrdiff_t>(t_in)) continue;
          for (std::size_t c = 0; c < c_in; ++c) acc += w(o, c, k) * x(b, static_cast<std::size_t>(u), c);
        }
        y(b, t, o) = acc;
      }
  return y;
}

struct config {
  std::size_t batch, t_in, c_in, c_out, kernel, stride, padding;
  bool bias;
};

// Direct-loop path (K*C_in <= 16) and GEMM path (> 16), with and without padding, overlapping
// windows (kernel > stride), gaps (kernel < stride), padding as wide as the kernel, no bias.
const config configs[] = {
    {2, 23, 1, 3, 10, 5, 3, true},   // the paper's first layer shape, direct loop
    {2, 11, 5, 4, 4, 2, 1, true},    // GEMM path, odd length
    {3, 9, 6, 3, 3, 1, 0, true},     // stride 1, no padding
    {2, 13, 9, 2, 2, 3, 2, true},    // kernel < stride: some inputs get no gradient; padding = kernel
    {1, 17, 3, 5, 8, 4, 2, false},   // no bias, GEMM path
    {2, 4, 2, 3, 7, 2, 3, true},     // input shorter than the kernel: every window touches padding
    {2, 31, 1, 40, 10, 5, 3, true},  // direct loop: register blocks of 4 frames x 32 channels + remainders
    {1, 20, 8, 40, 3, 2, 1, true},   // GEMM path with more channels
};

}  // namespace

TEST_CASE_TEMPLATE("conv1d: finite differences in double for input, weight and bias gradients", Backend,
                   CPC_TEST_BACKENDS) {
  for (const auto& cf : configs) {
    CAPTURE(cf.c_in);
    CAPTURE(cf.kernel);
    CAPTURE(cf.stride);
    rng gen(7);
    conv1d<double, Backend> layer({.in_channels = cf.c_in,
                                   .out_channels = cf.c_out,
                                   .kernel = cf.kernel,
                                   .stride = cf.stride,
                                   .padding = cf.padding,
                                   .bias = cf.bias},
                                  gen);
    tensor3<double> x = xt::zeros<double>({cf.batch, cf.t_in, cf.c_in}), y, dx;
    fill_uniform(x, gen);
    layer.forward(x, y);
    tensor3<double> r = xt::zeros_like(y);
    fill_uniform(r, gen);
    dx = xt::ones_like(x) * 123.0;  // backward must overwrite dx, not add to it
    layer.backward(x, y, r, &dx);
    auto loss = [&] {
      tensor3<double> yy;
      layer.forward(x, yy);
      return project(yy, r);
    };
    CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
    auto& w = layer.weight();
    CHECK(gradient_error(loss, w.value.data(), w.size(), w.grad.data()) < 1e-6);
    if (cf.bias) {
      auto& b = layer.bias();
      CHECK(gradient_error(loss, b.value.data(), b.size(), b.grad.data()) < 1e-6);
    }
  }
}

TEST_CASE_TEMPLATE("conv1d: forward equals a plain loop, and parameter gradients accumulate", Backend,
                   CPC_TEST_BACKENDS) {
  for (const auto& cf : configs) {
    CAPTURE(cf.c_in);
    CAPTURE(cf.kernel);
    rng gen(11);
    conv1d<double, Backend> layer({.in_channels = cf.c_in,
                                   .out_channels = cf.c_out,
                                   .kernel = cf.kernel,
                                   .stride = cf.stride,
                                   .padding = cf.padding,
                                   .bias = cf.bias},
                                  gen);
    tensor3<double> x = xt::zeros<double>({cf.batch, cf.t_in, cf.c_in}), y;
    fill_uniform(x, gen);
    y = xt::ones<double>({cf.batch, 1ul, cf.c_out}) * 99.0;  // wrong shape and junk: must be replaced
    layer.forward(x, y);
    const array<double> bias = layer.bias().value;
    const auto ref =
        reference_conv(x, layer.weight().value, cf.bias ? &bias : nullptr, cf.stride, cf.padding);
    REQUIRE(y.shape() == ref.shape());
    CHECK(xt::allclose(y, ref, 1e-12, 1e-12));
    tensor3<double> r = xt::zeros_like(y);
    fill_uniform(r, gen);
    layer.backward(x, y, r, nullptr);
    const array<double> once = layer.weight().grad;
    layer.backward(x, y, r, nullptr);
    CHECK(xt::allclose(layer.weight().grad, 2.0 * once, 1e-12, 1e-14));
  }
}

TEST_CASE_TEMPLATE("conv1d: matches torch.nn.Conv1d golden values in float", Backend, CPC_TEST_BACKENDS) {
  auto g = read_golden("conv1d.txt");
  struct golden_case {
    const char* tag;
    conv1d_options opt;
  };
  const golden_case cases[] = {
      {"a_", {.in_channels = 1, .out_channels = 3, .kernel = 10, .stride = 5, .padding = 3}},
      {"b_", {.in_channels = 5, .out_channels = 4, .kernel = 4, .stride = 2, .padding = 1}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.tag);
    const std::string t = c.tag;
    rng gen(0);
    conv1d<float, Backend> layer(c.opt, gen);
    assign(layer.weight().value, g[t + "weight"]);
    assign(layer.bias().value, g[t + "bias"]);
    tensor3<float> x, y, dy, dx;
    assign(x, g[t + "x"]);
    assign(dy, g[t + "dy"]);
    layer.forward(x, y);
    REQUIRE(y.size() == g[t + "y"].size());
    CHECK(max_relative_error(y, g[t + "y"]) < 1e-4);
    layer.backward(x, y, dy, &dx);
    CHECK(max_relative_error(dx, g[t + "dx"]) < 1e-4);
    CHECK(max_relative_error(layer.weight().grad, g[t + "dweight"]) < 1e-4);
    CHECK(max_relative_error(layer.bias().grad, g[t + "dbias"]) < 1e-4);
  }
}

TEST_CASE("conv1d: output_length follows PyTorch's floor formula, also for odd lengths") {
  CHECK(conv1d<float>::output_length(20480, 10, 5, 3) == 4096);
  CHECK(conv1d<float>::output_length(4096, 8, 4, 2) == 1024);
  CHECK(conv1d<float>::output_length(21, 4, 2, 1) == 10);  // (21 + 2 - 4) / 2 + 1 = 10.5 -> 10
  CHECK(conv1d<float>::output_length(23, 10, 5, 3) == 4);
  CHECK(conv1d<float>::output_length(1599, 10, 5, 3) == 320);
  CHECK(conv1d<float>::output_length(1598, 10, 5, 3) == 319);
  CHECK(conv1d<float>::output_length(4, 10, 5, 3) == 1);
  CHECK_THROWS_WITH_AS(conv1d<float>::output_length(3, 10, 5, 3),
                       "conv1d::output_length: expected length >= 4 (kernel 10, padding 3), got 3",
                       shape_error);
  rng gen(1);
  conv1d<float> layer({.in_channels = 2, .out_channels = 3, .kernel = 4, .stride = 2, .padding = 1}, gen);
  tensor3<float> x = xt::zeros<float>({1, 21, 2}), y;
  layer.forward(x, y);
  CHECK(y.shape()[1] == 10);
  CHECK(layer.output_length(21) == 10);
}

TEST_CASE_TEMPLATE("conv1d: batch independence and permutation", Backend, CPC_TEST_BACKENDS) {
  rng gen(5);
  for (std::size_t c_in : {1ul, 8ul}) {
    conv1d<float, Backend> layer(
        {.in_channels = c_in, .out_channels = 6, .kernel = 4, .stride = 2, .padding = 1}, gen);
    tensor3<float> x = xt::zeros<float>({std::size_t{4}, std::size_t{37}, c_in}), y;
    fill_uniform(x, gen);
    layer.forward(x, y);
    for (std::size_t b = 0; b < 4; ++b) {
      tensor3<float> xb = xt::view(x, xt::range(b, b + 1), xt::all(), xt::all()), yb;
      layer.forward(xb, yb);
      CHECK(xt::allclose(yb, xt::view(y, xt::range(b, b + 1), xt::all(), xt::all()), 1e-5, 1e-6));
    }
    tensor3<float> xp = x, yp;
    for (std::size_t b = 0; b < 4; ++b) xt::view(xp, b) = xt::view(x, 3 - b);
    layer.forward(xp, yp);
    for (std::size_t b = 0; b < 4; ++b) CHECK(xt::allclose(xt::view(yp, b), xt::view(y, 3 - b), 1e-5, 1e-6));
  }
}

TEST_CASE("conv1d: results are bit-identical for 1 and 2 threads") {
  rng gen(9);
  conv1d<float> layer({.in_channels = 64, .out_channels = 256, .kernel = 4, .stride = 2, .padding = 1}, gen);
  tensor3<float> x = xt::zeros<float>({3, 1500, 64});
  fill_uniform(x, gen);
  check_thread_invariance(layer, x);  // y, dx, d weight, d bias
}

TEST_CASE_TEMPLATE("conv1d: bad shapes and options throw with a message", Backend, CPC_TEST_BACKENDS) {
  rng gen(1);
  conv1d<float, Backend> layer({.in_channels = 2, .out_channels = 3, .kernel = 10, .stride = 5, .padding = 3},
                               gen);
  tensor3<float> x = xt::zeros<float>({2, 20, 3}), y;
  CHECK_THROWS_WITH_AS(layer.forward(x, y), "conv1d forward input: expected [*, *, 2], got [2, 20, 3]",
                       shape_error);
  tensor3<float> short_x = xt::zeros<float>({2, 3, 2});
  CHECK_THROWS_WITH_AS(layer.forward(short_x, y),
                       "conv1d forward input: expected [*, >= 4, 2] (kernel 10, padding 3), got [2, 3, 2]",
                       shape_error);
  tensor3<float> good = xt::zeros<float>({2, 20, 2});
  layer.forward(good, y);
  tensor3<float> dy = xt::zeros<float>({2, 5, 3});
  CHECK_THROWS_WITH_AS(layer.backward(good, y, dy, nullptr),
                       "conv1d backward output gradient: expected [2, 4, 3], got [2, 5, 3]", shape_error);
  using layer_t = conv1d<float, Backend>;  // (a comma inside CHECK_THROWS_AS would split the macro)
  CHECK_THROWS_AS(layer_t({.in_channels = 2, .out_channels = 3, .kernel = 4, .stride = 0}, gen),
                  config_error);
}

TEST_CASE("conv1d: PyTorch default init bound 1/sqrt(C_in * kernel)") {
  rng gen(2);
  conv1d<double> layer({.in_channels = 25, .out_channels = 50, .kernel = 4}, gen);
  const double bound = 0.1;
  CHECK(xt::amax(xt::abs(layer.weight().value))() <= bound);
  CHECK(xt::amax(xt::abs(layer.weight().value))() > 0.95 * bound);
  CHECK(xt::amax(xt::abs(layer.bias().value))() <= bound);
  CHECK(layer.weight().value.shape() == std::vector<std::size_t>{50, 25, 4});
}

TEST_CASE("conv1d: cpu equals reference (1e-5) on both cpu paths, edges, long sequences and wide windows") {
  rng gen(31);
  // {batch, t_in, c_in, c_out, kernel, stride, padding, bias}: the direct loop (K*C_in <= 16) with
  // channel remainders, the GEMM path past one 512-frame row block and one 128-channel block,
  // a window wider than 256 (two window blocks in d weight), every window in the padding, no bias.
  const config cases[] = {
      {2, 1203, 1, 40, 10, 5, 3, true}, {1, 1100, 16, 130, 4, 2, 1, true}, {2, 9, 70, 5, 4, 1, 2, false},
      {3, 4, 2, 3, 7, 2, 3, true},      {1, 1, 3, 2, 1, 1, 0, true},
  };
  for (const auto& cf : cases) {
    CAPTURE(cf.t_in);
    CAPTURE(cf.c_in);
    tensor3<float> x = xt::zeros<float>({cf.batch, cf.t_in, cf.c_in});
    fill_uniform(x, gen);
    check_layer_backends<conv1d, float>(conv1d_options{.in_channels = cf.c_in,
                                                       .out_channels = cf.c_out,
                                                       .kernel = cf.kernel,
                                                       .stride = cf.stride,
                                                       .padding = cf.padding,
                                                       .bias = cf.bias},
                                        x, 1e-5);
  }
}
