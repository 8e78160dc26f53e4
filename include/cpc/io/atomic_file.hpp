#pragma once
/// Atomic file replacement for checkpoints: write a temporary file in the target's directory,
/// flush it to disk, rename it over the target, then flush the directory. A reader sees either the
/// old file or the complete new one, and a failure at any point leaves the old file untouched.
/// POSIX only (open/fsync/rename). Source: DESIGN.md "Checkpoints"; REFERENCE.md pitfall 10.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "cpc/core/error.hpp"

namespace cpc {

/// The open temporary file handed to the writer callback of `write_file_atomically`.
class atomic_output {
 public:
  /// Appends `size` bytes. Errors: `cpc::io_error` naming the target and the errno text.
  void write(const void* data, std::size_t size) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
      const ::ssize_t n = ::write(fd_, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("cannot write temporary file '" + temp_.string() + "'");
      }
      p += n;
      size -= static_cast<std::size_t>(n);
      written_ += static_cast<std::size_t>(n);
    }
  }
  /// Bytes written so far.
  std::size_t bytes_written() const { return written_; }
  /// The final path being written.
  const std::filesystem::path& target() const { return target_; }

 private:
  template <class Writer>
  friend void write_file_atomically(const std::filesystem::path& path, Writer&& writer);

  atomic_output(int fd, std::filesystem::path target, std::filesystem::path temp)
      : fd_(fd), target_(std::move(target)), temp_(std::move(temp)) {}

  [[noreturn]] void fail(const std::string& what) const {
    const int e = errno;
    throw io_error("write_file_atomically: " + target_.string() + ": " + what + ": " +
                   std::generic_category().message(e));
  }

  int fd_;
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::size_t written_ = 0;
};

/// Writes `path` atomically: creates "<dir>/.<name>.tmp.<unique>" (mode 0666 minus umask), calls
/// `writer(atomic_output&)` to fill it, fsyncs and closes it, renames it over `path`, and fsyncs
/// the directory. If anything fails (including an exception from `writer`) the temporary file is
/// removed, `path` is untouched, and the error propagates.
/// Errors: `cpc::io_error` "write_file_atomically: <path>: <step>: <errno text>" for a failed
/// create/write/fsync/close/rename (e.g. a missing or unwritable directory, a full disk, a target
/// that is a directory); exceptions thrown by `writer` pass through unchanged.
template <class Writer>
void write_file_atomically(const std::filesystem::path& path, Writer&& writer) {
  namespace fs = std::filesystem;
  const fs::path name = path.filename();
  if (name.empty() || name == "." || name == "..")
    throw io_error("write_file_atomically: " + path.string() + ": not a file name");
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");

  static std::atomic<std::uint64_t> counter{0};
  int fd = -1;
  fs::path temp;
  for (int attempt = 0; fd < 0; ++attempt) {
    const auto stamp =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    const std::uint64_t unique =
        stamp ^ (static_cast<std::uint64_t>(::getpid()) << 40) ^ (counter++ * 0x9e3779b97f4a7c15ULL);
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".tmp.%016llx", static_cast<unsigned long long>(unique));
    // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on "." + std::string.
    std::string temp_name(1, '.');
    temp_name.append(name.string()).append(suffix);
    temp = dir / temp_name;
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt >= 100)) {
      const int e = errno;
      throw io_error("write_file_atomically: " + path.string() + ": cannot create temporary file '" +
                     temp.string() + "': " + std::generic_category().message(e));
    }
  }

  atomic_output out(fd, path, temp);
  bool open = true;
  try {
    writer(out);
    if (::fsync(fd) != 0) out.fail("cannot flush temporary file '" + temp.string() + "' to disk");
    open = false;
    if (::close(fd) != 0) out.fail("cannot close temporary file '" + temp.string() + "'");
    if (::rename(temp.c_str(), path.c_str()) != 0) out.fail("cannot rename '" + temp.string() + "' over it");
  } catch (...) {
    if (open) ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  // The new file is in place; make the rename itself durable. Some file systems cannot fsync a
  // directory (EINVAL): the rename is then as durable as that file system allows.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const int rc = ::fsync(dfd);
    const int e = errno;
    ::close(dfd);
    if (rc != 0 && e != EINVAL)
      throw io_error("write_file_atomically: " + path.string() + ": cannot flush directory '" + dir.string() +
                     "': " + std::generic_category().message(e));
  }
}

}  // namespace cpc
