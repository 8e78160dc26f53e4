// The CUDA backend's device memory on a GPU, compiled by the host compiler (no nvcc): device
// buffers, device tensors and the device parameter store round-trip their contents, and an
// impossible allocation is a device_error naming the bytes. Without a GPU the executable exits 77
// (ctest: skipped; see device_main.cpp).
#include <doctest/doctest.h>

#include <cpc/backend/cuda/memory.hpp>
#include <cpc/backend/cuda/parameter_store.hpp>
#include <cpc/backend/cuda/runtime.hpp>
#include <cpc/layers/linear.hpp>

#include <string>
#include <vector>

using namespace cpc;

namespace {

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

TEST_CASE("cuda memory: device buffers and tensors round-trip their contents") {
  std::vector<float> host(1000);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i) * 0.5f - 3.0f;
  device_buffer<float> b(host.size());
  CHECK(b.to_host() == std::vector<float>(host.size(), 0.0f));  // zero-filled
  b.upload(host.data(), host.size());
  CHECK(b.to_host() == host);
  b.resize(1500);  // keeps the contents, zero tail
  auto grown = b.to_host();
  CHECK(std::vector<float>(grown.begin(), grown.begin() + 1000) == host);
  CHECK(std::vector<float>(grown.begin() + 1000, grown.end()) == std::vector<float>(500, 0.0f));
  device_buffer<float> copy = b;
  copy.assign(3, 2.5f);
  CHECK(copy.to_host() == std::vector<float>{2.5f, 2.5f, 2.5f});
  CHECK(b.size() == 1500);  // deep copy
  std::vector<std::size_t> lengths{7, 3, 9};
  device_buffer<std::size_t> l;
  l.assign(lengths.begin(), lengths.end());
  CHECK(l.to_host() == lengths);
  std::vector<float> part(10);
  b.download(part.data(), 10, 990);
  CHECK(part[0] == host[990]);
  CHECK(contains(device_error_message([&] { b.download(part.data(), 10, 1495); }), "outside the buffer"));

  tensor3<float> t = xt::zeros<float>({2, 3, 4});
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(i);
  auto d = to<cuda>(t);
  static_assert(std::is_same_v<decltype(d), device_tensor<float, 3>>);
  CHECK(d.shape() == std::array<std::size_t, 3>{2, 3, 4});
  auto d2 = to<cuda>(d);
  const tensor3<float> back = to<cpu>(d2);
  CHECK(back == t);
}

TEST_CASE("cuda memory: an impossible allocation is a device_error naming the bytes") {
  const std::size_t n = std::size_t{1} << 50;  // 4 PiB of float
  const std::string m = device_error_message([&] { device_buffer<float> b(n); });
  CHECK(contains(m, "device_buffer allocation"));
  CHECK(contains(m, std::to_string(n * sizeof(float)) + " bytes"));
  CHECK(contains(m, "cudaErrorMemoryAllocation"));
  device_buffer<float> ok(16);  // the device still works afterwards
  CHECK(ok.to_host().size() == 16);
}

TEST_CASE("cuda memory: the device parameter store views device slots and round-trips values") {
  rng g1(3), g2(3);
  linear<float, cpu> on_device({.in_features = 5, .out_features = 3}, g1);
  linear<float, cpu> on_host({.in_features = 5, .out_features = 3}, g2);
  parameter_store<float, cuda> dev(on_device);
  parameter_store<float, cpu> host(on_host);
  CHECK(dev.size() == host.size());
  CHECK(dev.parameters().size() == 2);
  CHECK(dev.parameters().flat.values == dev.values());
  CHECK(dev.values_to_host() == std::vector<float>(host.values(), host.values() + host.size()));
  CHECK(on_device.weight().value.data() == dev.values());
  CHECK(on_device.weight().value.shape()[1] == 5);
  const array<float> w = dev.value_to_host(0);
  CHECK(w == on_host.weight().value);
  const array<float> b = dev.value_to_host(1);
  CHECK(b == on_host.bias().value);
  std::vector<float> ones(dev.size(), 1.0f);
  dev.values_from_host(ones.data());
  CHECK(dev.values_to_host() == ones);
}
