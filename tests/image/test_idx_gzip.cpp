// read_idx_gzip (cpc/data/idx_gzip.hpp, zlib): the same arrays as the plain reader from plain and
// gzip-compressed IDX files, and io_errors naming the file for bad ones.
#include <doctest/doctest.h>

#include "support/idx_files.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <zlib.h>

#include <cpc/data/idx.hpp>
#include <cpc/data/idx_gzip.hpp>

using namespace cpc;
using cpc::testing::idx_header;

namespace {

/// A fresh directory under the system temp dir, removed with its files on destruction.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::random_device rd;
    do {
      path = std::filesystem::temp_directory_path() / ("cpc_test_idx_gzip_" + std::to_string(rd()));
    } while (!std::filesystem::create_directory(path));
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string write_plain(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

/// Writes `bytes` gzip-compressed through zlib's gzwrite.
std::string write_gzip(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb9");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
  return path;
}

std::vector<std::uint8_t> images_file() {  // [2, 3, 300]: extents above 255, 1800 values
  auto img = idx_header(0x08, {2, 3, 300});
  for (std::size_t i = 0; i < 2 * 3 * 300; ++i) img.push_back(static_cast<std::uint8_t>(i % 251));
  return img;
}

std::vector<std::uint8_t> labels_file() {
  auto lab = idx_header(0x08, {4});
  for (std::uint8_t v : {7, 0, 9, 3}) lab.push_back(v);
  return lab;
}

}  // namespace

TEST_CASE("idx_gzip: plain and gzip-compressed files read as the plain reader reads them") {
  const temp_dir dir;
  for (const auto& entry : {std::pair{"images", images_file()}, std::pair{"labels", labels_file()}}) {
    const auto& name = std::get<0>(entry);
    const auto& bytes = std::get<1>(entry);
    CAPTURE(name);
    const std::string plain = write_plain(dir.file(std::string(name) + ".idx"), bytes);
    const std::string gz = write_gzip(dir.file(std::string(name) + ".idx.gz"), bytes);
    REQUIRE(std::filesystem::file_size(gz) != bytes.size());  // really compressed, not stored
    const idx_array expected = read_idx(plain);
    const idx_array from_plain = read_idx_gzip(plain);
    const idx_array from_gz = read_idx_gzip(gz);
    CHECK(from_plain.shape == expected.shape);
    CHECK(from_plain.values == expected.values);
    CHECK(from_gz.shape == expected.shape);
    CHECK(from_gz.values == expected.values);
  }
  const idx_array img = read_idx_gzip(write_gzip(dir.file("img.gz"), images_file()));
  CHECK(img.shape == std::vector<std::size_t>{2, 3, 300});
  REQUIRE(img.values.size() == 1800);
  CHECK(img.values[0] == 0);
  CHECK(img.values[300] == 300 % 251);
  CHECK(img.values[1799] == 1799 % 251);
  CHECK(idx_labels(read_idx_gzip(write_gzip(dir.file("lab.gz"), labels_file()))) ==
        std::vector<int>{7, 0, 9, 3});
}

TEST_CASE("idx_gzip: a file larger than the 64 KiB read buffer decompresses whole") {
  const temp_dir dir;
  auto big = idx_header(0x08, {3, 200, 200});  // 120000 values: two reads and a partial one
  for (std::size_t i = 0; i < 3 * 200 * 200; ++i) big.push_back(static_cast<std::uint8_t>((i * 7919) % 256));
  const idx_array a = read_idx_gzip(write_gzip(dir.file("big.gz"), big));
  CHECK(a.shape == std::vector<std::size_t>{3, 200, 200});
  CHECK(a.values == std::vector<std::uint8_t>(big.begin() + 16, big.end()));
}

TEST_CASE("idx_gzip: bad files are io_errors naming the file") {
  const temp_dir dir;
  const auto img = images_file();

  const std::string missing = dir.file("missing.idx.gz");
  CHECK_THROWS_WITH_AS(read_idx_gzip(missing), ("idx: cannot open " + missing).c_str(), io_error);

  // A gzip stream cut in half: zlib reports an unexpected end of file.
  const std::string whole = write_gzip(dir.file("whole.gz"), img);
  std::vector<std::uint8_t> gz = read_file_bytes(whole);
  REQUIRE(gz.size() > 20);
  gz.resize(gz.size() / 2);
  const std::string cut = write_plain(dir.file("cut.gz"), gz);
  CHECK_THROWS_WITH_AS(read_idx_gzip(cut), doctest::Contains(("idx: " + cut + ": ").c_str()), io_error);
  // zlib's own message starts with the path; the reader names the file once, not twice.
  CHECK_THROWS_WITH_AS(read_idx_gzip(cut), ("idx: " + cut + ": unexpected end of file").c_str(), io_error);

  // A complete stream whose trailer checksum is wrong (last 8 bytes: CRC-32, length).
  std::vector<std::uint8_t> bad_crc = read_file_bytes(whole);
  bad_crc[bad_crc.size() - 8] ^= 0xff;
  const std::string crc = write_plain(dir.file("crc.gz"), bad_crc);
  CHECK_THROWS_WITH_AS(read_idx_gzip(crc), ("idx: " + crc + ": incorrect data check").c_str(), io_error);

  // Decompresses fine, but is not an IDX file.
  auto bad_magic = img;
  bad_magic[0] = 1;
  const std::string magic = write_gzip(dir.file("magic.gz"), bad_magic);
  CHECK_THROWS_WITH_AS(read_idx_gzip(magic),
                       ("idx: " + magic + ": bad magic number (first two bytes must be 0)").c_str(),
                       io_error);

  // Decompresses fine, but holds fewer values than the extents say.
  auto short_payload = img;
  short_payload.resize(short_payload.size() - 1);
  const std::string shrt = write_gzip(dir.file("short.gz"), short_payload);
  CHECK_THROWS_WITH_AS(
      read_idx_gzip(shrt),
      ("idx: " + shrt + ": extents [2, 3, 300] need 1800 value bytes, file has 1799").c_str(), io_error);
}
