#pragma once
/// Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al., "THE MNIST DATABASE of
/// handwritten digits", section "FILE FORMATS FOR THE MNIST DATABASE"): a 4-byte magic number
/// 0x00 0x00 <type> <rank>, then <rank> big-endian 32-bit extents, then the values row-major.
/// This header reads uncompressed files; gzip-compressed ones (the Debian package
/// dataset-fashion-mnist ships *.gz) are read by cpc/data/idx_gzip.hpp, which needs zlib.
#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// An IDX array of unsigned bytes (type 0x08, the only type MNIST-style files use).
/// `shape` e.g. `[60000, 28, 28]` for images or `[60000]` for labels; `values` row-major.
struct idx_array {
  std::vector<std::size_t> shape;
  std::vector<std::uint8_t> values;
};

/// Parses an IDX byte buffer; `name` is used in messages (e.g. the file name).
/// Errors: `cpc::io_error` naming `name` for a short header, a bad magic number, an element type
/// other than unsigned byte (0x08), rank 0 or above 4, or a payload that is shorter or longer than
/// the extents say.
inline idx_array parse_idx(std::span<const std::uint8_t> bytes, std::string_view name) {
  const std::string where = "idx: " + std::string(name);
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
    throw io_error(
        where + ": file is gzip-compressed; read it with cpc::read_idx_gzip (cpc/data/idx_gzip.hpp, zlib)");
  if (bytes.size() < 4)
    throw io_error(where + ": expected a 4-byte magic number, got " + std::to_string(bytes.size()) +
                   " bytes");
  if (bytes[0] != 0 || bytes[1] != 0)
    throw io_error(where + ": bad magic number (first two bytes must be 0)");
  if (bytes[2] != 0x08)
    throw io_error(where + ": unsupported element type 0x" +
                   std::string(1, "0123456789abcdef"[bytes[2] >> 4]) +
                   std::string(1, "0123456789abcdef"[bytes[2] & 15]) + " (expected 0x08, unsigned byte)");
  const std::size_t rank = bytes[3];
  if (rank == 0 || rank > 4) throw io_error(where + ": expected rank 1..4, got " + std::to_string(rank));
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < header)
    throw io_error(where + ": truncated header (" + std::to_string(bytes.size()) + " of " +
                   std::to_string(header) + " bytes)");
  idx_array out;
  std::size_t count = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * d;
    const std::size_t n =
        (std::size_t(p[0]) << 24) | (std::size_t(p[1]) << 16) | (std::size_t(p[2]) << 8) | p[3];
    out.shape.push_back(n);
    count *= n;
  }
  if (bytes.size() - header != count)
    throw io_error(where + ": extents " + shape_string(out.shape) + " need " + std::to_string(count) +
                   " value bytes, file has " + std::to_string(bytes.size() - header));
  out.values.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

/// Reads the whole file at `path`. Errors: `cpc::io_error` when it cannot be opened or read.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("idx: cannot open " + path);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw io_error("idx: read error in " + path);
  return bytes;
}

/// Reads an uncompressed IDX file. Errors: as `read_file_bytes` and `parse_idx`.
inline idx_array read_idx(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  return parse_idx(bytes, path);
}

/// Images `[N, rows, cols]` (or `[N, rows, cols, channels]`) as floats pixel * scale in an NHWC
/// tensor `[N, rows, cols, channels]` (channels 1 for rank 3). Errors: `cpc::shape_error` for
/// another rank.
template <class T>
void idx_images(const idx_array& a, tensor<T, 4>& out, T scale = T(1) / T(255)) {
  if (a.shape.size() != 3 && a.shape.size() != 4)
    throw shape_error("idx_images: expected [N, rows, cols] or [N, rows, cols, channels], got " +
                      shape_string(a.shape));
  ensure_shape(out, std::array<std::size_t, 4>{a.shape[0], a.shape[1], a.shape[2],
                                               a.shape.size() == 4 ? a.shape[3] : 1});
  for (std::size_t i = 0; i < a.values.size(); ++i) out.data()[i] = static_cast<T>(a.values[i]) * scale;
}

/// Labels `[N]` as ints. Errors: `cpc::shape_error` for another rank.
inline std::vector<int> idx_labels(const idx_array& a) {
  if (a.shape.size() != 1) throw shape_error("idx_labels: expected [N], got " + shape_string(a.shape));
  return {a.values.begin(), a.values.end()};
}

}  // namespace cpc
