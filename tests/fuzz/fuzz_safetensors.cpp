// libFuzzer target: load_safetensors on arbitrary bytes, then every accessor of what it returns
// (values<U>() for each element type, to_array). Only cpc::error may escape the loader.
#include <cstddef>
#include <cstdint>

#include <cpc/io/safetensors.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path = cpc::fuzz::scratch_dir() / "input.safetensors";
  cpc::fuzz::write_file(path, data, size);
  cpc::safetensors_file f;
  try {
    f = cpc::load_safetensors(path);
  } catch (const cpc::error&) {
    return 0;
  }
  for (const auto& [name, t] : f.tensors) {
    std::size_t count = 1;
    for (auto d : t.shape) count *= d;
    if (count != t.size() || t.bytes.size() != count * cpc::dtype_size(t.type)) __builtin_trap();
    (void)t.values<float>();
    (void)t.values<double>();
    // Floating-point data must refuse integer conversion with cpc::io_error (a NaN or -1.0 would
    // make the cast undefined); integer data converts.
    try {
      (void)t.values<std::uint64_t>();
      (void)t.values<std::int32_t>();
      (void)t.values<std::uint8_t>();
      if (cpc::is_floating(t.type)) __builtin_trap();
    } catch (const cpc::io_error&) {
      if (!cpc::is_floating(t.type)) __builtin_trap();
    }
    try {
      (void)cpc::to_array<float>(t, name);
    } catch (const cpc::error&) {
    }
    try {
      (void)cpc::to_array<std::int64_t>(t, name);
    } catch (const cpc::error&) {
    }
  }
  (void)f.contains("rng.model");
  try {
    (void)f.at("optimizer.steps");
  } catch (const cpc::error&) {
  }
  return 0;
}
