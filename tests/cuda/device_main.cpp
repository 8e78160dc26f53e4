// main() of the CUDA device tests: without a usable CUDA device every run prints one line saying
// so and exits with 77, which ctest reports as skipped (SKIP_RETURN_CODE). Listing the test cases
// (what the build does to register them) works without a device.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cpc/backend/cuda/runtime.hpp>

#include <cstdio>
#include <string_view>

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    if (a.starts_with("--list") || a.starts_with("-l") || a == "--help" || a == "-h" || a == "-?")
      listing = true;
  }
  if (!listing && !cpc::cuda_device_available()) {
    std::printf(
        "cpc: skipped - no GPU found: %s; these tests need an NVIDIA GPU (scripts/cuda-device-check.sh)\n",
        cpc::cuda_device_description().c_str());
    return 77;
  }
  if (!listing) std::printf("cpc: CUDA device: %s\n", cpc::cuda_device_description().c_str());
  doctest::Context context(argc, argv);
  return context.run();
}
