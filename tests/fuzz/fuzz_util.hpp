#pragma once
// Shared by the fuzz targets and gen_fuzz_seeds: scratch files (in /dev/shm when it exists, so
// each execution costs no disk I/O) and the small model the checkpoint fuzzer loads into.
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <cpc/model/model.hpp>
#include <cpc/optim/adam.hpp>

namespace cpc::fuzz {

/// A per-process scratch directory, created on first use and kept (libFuzzer exits via exit()).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    std::filesystem::path base =
        std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : std::filesystem::temp_directory_path();
    auto d = base / ("cpc-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes `size` bytes to `path` (truncating it).
inline void write_file(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

/// A two-channel, one-conv, K = 1, N = 1 model: about 50 parameters, so that a whole checkpoint
/// (with Adam's moments) is ~2 KB and mutations reach every validation step quickly.
struct micro_config {
  static constexpr std::size_t window_samples = 64;
  static constexpr std::size_t sample_rate = 16000;
  static constexpr std::size_t latent_channels = 2;
  static constexpr std::size_t context_channels = 2;
  static constexpr std::size_t autoregressor_layers = 1;
  static constexpr std::size_t prediction_steps = 1;
  static constexpr std::size_t negatives = 1;
  static constexpr std::array<std::size_t, 1> kernels{4};
  static constexpr std::array<std::size_t, 1> strides{4};
  static constexpr std::array<std::size_t, 1> paddings{0};
};
using micro_model = model<micro_config, strided_conv_encoder, gru, info_nce, float>;

}  // namespace cpc::fuzz
