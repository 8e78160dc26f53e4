#include <doctest/doctest.h>

#include "support/idx_files.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <cpc/data/idx.hpp>

using namespace cpc;
using cpc::testing::idx_header;

namespace {
std::string write_temp(const std::string& name, const std::vector<std::uint8_t>& bytes) {
  const auto path = (std::filesystem::temp_directory_path() / ("cpc_test_idx_" + name)).string();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}
}  // namespace

TEST_CASE("idx: reads a synthetic image file and a label file (big-endian extents > 255)") {
  auto img = idx_header(0x08, {2, 3, 300});
  for (std::size_t i = 0; i < 2 * 3 * 300; ++i) img.push_back(static_cast<std::uint8_t>(i % 251));
  const auto path = write_temp("images", img);
  const idx_array a = read_idx(path);
  CHECK(a.shape == std::vector<std::size_t>{2, 3, 300});
  REQUIRE(a.values.size() == 1800);
  CHECK(a.values[1799] == 1799 % 251);
  tensor<float, 4> t;
  idx_images(a, t);
  CHECK(t.shape() == std::array<std::size_t, 4>{2, 3, 300, 1});
  CHECK(t(1, 2, 299, 0) == doctest::Approx((1799 % 251) / 255.0));
  auto lab = idx_header(0x08, {4});
  for (std::uint8_t v : {7, 0, 9, 3}) lab.push_back(v);
  const auto labels = idx_labels(read_idx(write_temp("labels", lab)));
  CHECK(labels == std::vector<int>{7, 0, 9, 3});
  CHECK_THROWS_WITH_AS(idx_labels(a), "idx_labels: expected [N], got [2, 3, 300]", shape_error);
  std::filesystem::remove(path);
}

TEST_CASE("idx: bad files are io_errors that say what is wrong") {
  CHECK_THROWS_WITH_AS(read_idx("/nonexistent/cpc/file.idx"), "idx: cannot open /nonexistent/cpc/file.idx",
                       io_error);
  const std::vector<std::uint8_t> tiny{0, 0};
  CHECK_THROWS_WITH_AS(parse_idx(tiny, "t"), "idx: t: expected a 4-byte magic number, got 2 bytes", io_error);
  auto bad_magic = idx_header(0x08, {1});
  bad_magic[0] = 1;
  bad_magic.push_back(0);
  CHECK_THROWS_WITH_AS(parse_idx(bad_magic, "m"), "idx: m: bad magic number (first two bytes must be 0)",
                       io_error);
  auto floats = idx_header(0x0D, {1});
  CHECK_THROWS_WITH_AS(parse_idx(floats, "f"),
                       "idx: f: unsupported element type 0x0d (expected 0x08, unsigned byte)", io_error);
  auto rank0 = idx_header(0x08, {});
  CHECK_THROWS_WITH_AS(parse_idx(rank0, "r"), "idx: r: expected rank 1..4, got 0", io_error);
  auto short_header = idx_header(0x08, {2, 2});
  short_header.resize(9);
  CHECK_THROWS_WITH_AS(parse_idx(short_header, "h"), "idx: h: truncated header (9 of 12 bytes)", io_error);
  auto truncated = idx_header(0x08, {2, 2});
  truncated.push_back(1);
  CHECK_THROWS_WITH_AS(parse_idx(truncated, "x"), "idx: x: extents [2, 2] need 4 value bytes, file has 1",
                       io_error);
  auto trailing = idx_header(0x08, {1});
  trailing.push_back(1);
  trailing.push_back(2);
  CHECK_THROWS_WITH_AS(parse_idx(trailing, "y"), "idx: y: extents [1] need 1 value bytes, file has 2",
                       io_error);
  const std::vector<std::uint8_t> gz{0x1f, 0x8b, 8, 0};
  CHECK_THROWS_AS(parse_idx(gz, "g"), io_error);
}
