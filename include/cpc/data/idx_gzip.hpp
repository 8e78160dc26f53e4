#pragma once
/// IDX files that may be gzip-compressed (as Debian's dataset-fashion-mnist ships them).
/// Needs zlib: link ZLIB::ZLIB (CMake `find_package(ZLIB)`; Debian zlib1g-dev).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <zlib.h>

#include "cpc/core/error.hpp"
#include "cpc/data/idx.hpp"

namespace cpc {

/// Reads a file through zlib's gz* interface: gzip data is decompressed, other files are read
/// as they are. Errors: `cpc::io_error` "idx: <path>: <zlib's message>" when it cannot be opened or
/// is a corrupt or truncated gzip stream.
inline std::vector<std::uint8_t> read_maybe_gzip(const std::string& path) {
  const std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), &gzclose);
  if (f == nullptr) throw io_error("idx: cannot open " + path);
  std::vector<std::uint8_t> out;
  std::uint8_t buf[1 << 16];
  int n = 0;
  while ((n = gzread(f.get(), buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  // gzread gives -1 for corrupt data, but 0 (as at the end) for a truncated stream, whose error
  // (Z_BUF_ERROR, "unexpected end of file") only gzerror reports.
  int code = Z_OK;
  const char* msg = gzerror(f.get(), &code);
  if (n < 0 || (code != Z_OK && code != Z_STREAM_END)) {
    std::string what = msg != nullptr ? msg : "read error";
    if (what.starts_with(path + ": ")) what.erase(0, path.size() + 2);  // zlib names the file too
    throw io_error("idx: " + path + ": " + what);
  }
  return out;
}

/// Reads an IDX file, gzip-compressed or not. Errors: as `read_maybe_gzip` and `parse_idx`.
inline idx_array read_idx_gzip(const std::string& path) {
  const auto bytes = read_maybe_gzip(path);
  return parse_idx(bytes, path);
}

}  // namespace cpc
