#pragma once
/// Typed errors thrown by cpc. Every always-on check throws one of these; the message names
/// what was expected and what came. Source: project convention (DESIGN.md, "Errors").
#include <stdexcept>
#include <string>

namespace cpc {

/// Base of every error cpc throws on bad input or failed operations.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A tensor had the wrong rank or extent. Message: "<where>: expected [..], got [..]".
class shape_error : public error {
 public:
  using error::error;
};

/// A file could not be read, parsed or written (audio, labels, checkpoints). Names the file.
class io_error : public error {
 public:
  using error::error;
};

/// A non-finite value (NaN / Inf) appeared in a loss, gradient or input. Names where.
class numeric_error : public error {
 public:
  using error::error;
};

/// An option or argument is out of its documented range (e.g. negative stride).
class config_error : public error {
 public:
  using error::error;
};

/// The processes of a data-parallel run lost each other: a collective did not complete within its
/// deadline (a rank died or hangs) or the transport reported an error. Names the operation, the
/// rank and the deadline. After it, the group is unusable: end the job (cpc/dist/mpi.hpp).
class communication_error : public error {
 public:
  using error::error;
};

}  // namespace cpc
