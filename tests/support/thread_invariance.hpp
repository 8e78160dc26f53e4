#pragma once
// Checks that a layer's results do not depend on the thread count (the parallel loops split fixed
// blocks of independent outputs; see cpc/core/threads.hpp).
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include <cpc/core/parameter.hpp>
#include <cpc/core/threads.hpp>

#include <xtensor/xmath.hpp>

namespace cpc::testing {

/// Runs forward and backward (dy = cos(3 y)) on `x` with 1 and with 2 threads and CHECKs that the
/// output, the input gradient and every parameter gradient are bit-identical. Returns the output.
/// Restores the default thread count.
template <class Layer, class Tensor>
Tensor check_thread_invariance(Layer& layer, const Tensor& x) {
  using T = typename Tensor::value_type;
  auto run = [&](std::size_t threads, Tensor& y, Tensor& dx) {
    set_num_threads(threads);
    layer.forward(x, y);
    const Tensor dy = xt::cos(y * T(3));
    zero_grad<T>(layer);
    layer.backward(x, y, dy, &dx);
    std::vector<array<T>> grads;
    for (auto& [name, p] : named_parameters<T>(layer)) grads.push_back(p->grad);
    return grads;
  };
  Tensor y1, y2, dx1, dx2;
  const auto g1 = run(1, y1, dx1);
  const auto g2 = run(2, y2, dx2);
  set_num_threads(std::thread::hardware_concurrency());
  CHECK(y1 == y2);
  CHECK(dx1 == dx2);
  REQUIRE(g1.size() == g2.size());
  for (std::size_t i = 0; i < g1.size(); ++i) {
    CAPTURE(i);
    CHECK(g1[i] == g2[i]);
  }
  return y1;
}

}  // namespace cpc::testing
