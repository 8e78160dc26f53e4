// The CUDA backend's runtime layer, compiled by the host compiler (no nvcc) and run everywhere the
// toolkit is: without a GPU, every first use of the device throws a typed cpc::device_error that
// names the call and the CUDA message (never a crash), a failed device parameter store leaves the
// module's parameters usable, and empty buffers need no device. (With a GPU:
// test_cuda_device_memory.cpp.)
#include <doctest/doctest.h>

#include <cpc/backend/cuda/memory.hpp>
#include <cpc/backend/cuda/parameter_store.hpp>
#include <cpc/backend/cuda/runtime.hpp>
#include <cpc/layers/linear.hpp>

#include <cstdint>
#include <string>
#include <vector>

using namespace cpc;

namespace {

/// The message of the device_error that `f` throws (fails the test when it throws nothing or
/// something else).
template <class F>
std::string device_error_message(F&& f) {
  try {
    f();
  } catch (const device_error& e) {
    return e.what();
  }
  FAIL("expected a cpc::device_error");
  return {};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("cuda runtime: the backend's types are what the seam says") {
  static_assert(std::is_same_v<buffer_for<float, cuda>, device_buffer<float>>);
  static_assert(std::is_same_v<tensor_for<float, 3, cuda>, device_tensor<float, 3>>);
  static_assert(!host_accessible<cuda>);
  static_assert(std::is_base_of_v<error, device_error>);
  CHECK(std::string(cuda::name) == "cuda");
  MESSAGE("device: " << cuda_device_description());
}

TEST_CASE("cuda runtime: empty device buffers and tensors need no device") {
  device_buffer<float> b;
  CHECK(b.empty());
  CHECK(b.data() == nullptr);
  device_buffer<float> c(0);
  c.resize(0);
  c.assign(0, 1.0f);
  CHECK(c.to_host().empty());
  device_tensor<float, 3> t;
  t.resize(std::array<std::size_t, 3>{0, 5, 7});
  CHECK(t.size() == 0);
  CHECK(t.shape()[2] == 7);
  device_buffer<float> moved(std::move(c));
  CHECK(moved.empty());
}

TEST_CASE("cuda runtime: without a GPU the first use throws device_error naming the call and the reason") {
  if (cuda_device_available()) {
    MESSAGE("a CUDA device is present; the no-device behaviour is not checked on this machine");
    return;
  }
  CHECK(contains(cuda_device_description(), "no usable CUDA device"));
  const std::string alloc = device_error_message([] { device_buffer<float> b(1000); });
  CHECK(contains(alloc, "cpc::cuda device_buffer allocation"));
  CHECK(contains(alloc, "no usable CUDA device"));
  CHECK(contains(alloc, "cudaGetDeviceCount"));
  const std::string ctx = device_error_message([] { cuda_detail::context::get("gemm"); });
  CHECK(contains(ctx, "cpc::cuda gemm: no usable CUDA device"));
  const tensor3<float> host = xt::zeros<float>({2, 3, 4});
  CHECK(contains(device_error_message([&] { (void)to<cuda>(host); }), "no usable CUDA device"));
  CHECK(contains(device_error_message([] { cuda_synchronize(); }), "synchronize"));
  rng gen(1);
  linear<float, cpu> layer({.in_features = 3, .out_features = 2}, gen);
  const array<float> w = layer.weight().value;
  CHECK(contains(device_error_message([&] { parameter_store<float, cuda> store(layer); }),
                 "no usable CUDA device"));
  CHECK(layer.weight().value == w);  // untouched and still host memory
  CHECK(layer.weight().owns_memory());
  // Asking again gives the same typed error: nothing is left half-initialised.
  CHECK(contains(device_error_message([] { device_buffer<double> b(1); }), "no usable CUDA device"));
}
