#pragma once
// Builds IDX files for the reader tests (tests/unit/test_idx.cpp, tests/image/test_idx_gzip.cpp).
#include <cstdint>
#include <vector>

namespace cpc::testing {

/// The header of an IDX file (LeCun et al., MNIST format): two zero bytes, the element type code
/// (0x08 = uint8, ...), the number of dimensions, then each dimension as big-endian uint32.
inline std::vector<std::uint8_t> idx_header(std::uint8_t type, const std::vector<std::uint32_t>& dims) {
  std::vector<std::uint8_t> b{0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
  return b;
}

}  // namespace cpc::testing
