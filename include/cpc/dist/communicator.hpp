#pragma once
/// The seam between data-parallel training and a transport: a group of processes ("ranks") that
/// hold replicas of one model, each computes gradients on its own windows, and the group averages
/// them before every optimiser step (issue 18). `communicator` is what the trainer needs from the
/// group; `local_communicator` is the group of one (no transport); `cpc::mpi_communicator`
/// (cpc/dist/mpi.hpp, target cpc::mpi) is the MPI transport. A GPU backend plugs in a
/// communicator whose reductions take device pointers (NCCL; docs/distributed.md).
/// Nothing here depends on MPI.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "cpc/backend/ops.hpp"

namespace cpc {

/// A group of processes that train one model together. Every member function is collective:
/// every rank calls it, in the same order, with the same sizes (and the same root); results are
/// the same bits on every rank. Pointers name memory of the backend the communicator serves
/// (host memory for MPI).
/// Errors: implementations throw `cpc::communication_error` when a collective does not complete
/// within their deadline (a rank died or hangs) or the transport fails; the group is unusable
/// after that and the job must end (`mpi_environment::finish`).
class communicator {
 public:
  virtual ~communicator() = default;
  /// This process's index in the group, 0 <= rank() < size().
  virtual std::size_t rank() const = 0;
  /// Number of processes in the group.
  virtual std::size_t size() const = 0;
  /// x[i] <- the sum over ranks of x[i], for i < n; identical bits on every rank.
  virtual void allreduce_sum(float* x, std::size_t n) = 0;
  /// x[i] <- the sum over ranks of x[i], for i < n; identical bits on every rank.
  virtual void allreduce_sum(double* x, std::size_t n) = 0;
  /// Copies `bytes` bytes at `data` on rank `root` into `data` on every rank.
  virtual void broadcast(void* data, std::size_t bytes, std::size_t root) = 0;
  /// recv[r * bytes, (r + 1) * bytes) <- the `bytes` bytes at `send` on rank r, on every rank
  /// (`recv` holds size() * bytes bytes).
  virtual void allgather(const void* send, void* recv, std::size_t bytes) = 0;
  /// Returns when every rank has called it.
  virtual void barrier() = 0;
  /// One line for logs, e.g. "MPI (Open MPI v4.1.4), 2 ranks".
  virtual std::string describe() const = 0;
};

/// The group of one process: every collective is the identity. What `cpc::train` does without a
/// communicator, as an object (tests, programs that take a communicator either way).
class local_communicator final : public communicator {
 public:
  std::size_t rank() const override { return 0; }
  std::size_t size() const override { return 1; }
  void allreduce_sum(float*, std::size_t) override {}
  void allreduce_sum(double*, std::size_t) override {}
  void broadcast(void*, std::size_t, std::size_t) override {}
  void allgather(const void* send, void* recv, std::size_t bytes) override {
    if (bytes > 0 && send != recv) std::memmove(recv, send, bytes);
  }
  void barrier() override {}
  std::string describe() const override { return "one process"; }
};

/// x[i] <- the mean over ranks of x[i] (the sum, then times 1 / size() on `Backend`), identical
/// bits on every rank. For 2 ranks (a + b) * 0.5 is exact: the mean of two gradients is the
/// correctly rounded one.
template <class T, class Backend = cpu>
void allreduce_mean(communicator& c, T* x, std::size_t n) {
  if (c.size() == 1) return;
  c.allreduce_sum(x, n);
  ops::axpby<Backend>(
      ops::axpby_args<T>{.n = n, .alpha = T(1) / static_cast<T>(c.size()), .x = x, .beta = T(0), .y = x});
}

/// A 64-bit fingerprint of `bytes` bytes (for comparing replicas: equal bytes give equal
/// fingerprints; different bytes differ with probability 1 - 2^-64 for practical purposes). Reads
/// 8-byte words in four independent lanes (a few GB/s on one core), then the tail byte by byte.
inline std::uint64_t fingerprint(const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  const auto mix = [](std::uint64_t h, std::uint64_t w) {
    h ^= w + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 31);
  };
  std::array<std::uint64_t, 4> lane{1, 2, 3, 4};
  std::size_t i = 0;
  for (; i + 32 <= bytes; i += 32)
    for (std::size_t k = 0; k < 4; ++k) {
      std::uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      lane[k] = mix(lane[k], w);
    }
  std::uint64_t h = mix(mix(mix(lane[0], lane[1]), lane[2]), lane[3]);
  for (; i < bytes; ++i) h = mix(h, p[i]);
  return mix(h, bytes);
}

}  // namespace cpc
