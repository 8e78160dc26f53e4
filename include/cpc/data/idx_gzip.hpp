#pragma once
/// IDX files that may be gzip-compressed (as Debian's dataset-fashion-mnist ships them).
/// Needs zlib: link ZLIB::ZLIB (CMake `find_package(ZLIB)`; Debian zlib1g-dev).
#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

#include "cpc/core/error.hpp"
#include "cpc/data/idx.hpp"

namespace cpc {

/// Reads a file through zlib's gz* interface: gzip data is decompressed, other files are read
/// as they are. Errors: `cpc::io_error` naming `path` when it cannot be opened or is a corrupt
/// or truncated gzip stream.
inline std::vector<std::uint8_t> read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw io_error("idx: cannot open " + path);
  std::vector<std::uint8_t> out;
  std::uint8_t buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      throw io_error("idx: " + path + ": " + msg);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  int code = 0;
  const char* msg = gzerror(f, &code);
  const std::string err = code != Z_OK && code != Z_STREAM_END && msg != nullptr ? msg : "";
  gzclose(f);
  if (!err.empty()) throw io_error("idx: " + path + ": " + err);
  return out;
}

/// Reads an IDX file, gzip-compressed or not. Errors: as `read_maybe_gzip` and `parse_idx`.
inline idx_array read_idx_gzip(const std::string& path) {
  const auto bytes = read_maybe_gzip(path);
  return parse_idx(bytes, path);
}

}  // namespace cpc
