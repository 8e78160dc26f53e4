#pragma once
/// MPI as the transport of data-parallel training (issue 18): `mpi_environment` starts and ends
/// MPI and ends the whole job when one rank fails; `mpi_communicator` runs the collectives of
/// `cpc::communicator` with a deadline, so that a rank that died or hangs ends every other rank
/// with `cpc::communication_error` within a bounded time instead of a silent wait.
/// Needs the cpc::mpi target (cpc configured with -DCPC_WITH_MPI=ON; Debian: libopenmpi-dev),
/// which adds MPI's include path and libraries and defines CPC_WITH_MPI. Launch with
/// `mpirun -np N program ...`; README "Training on several machines".
#if !__has_include(<mpi.h>)
#error \
    "cpc/dist/mpi.hpp needs <mpi.h>: link cpc::mpi (configure cpc with -DCPC_WITH_MPI=ON; Debian: libopenmpi-dev)"
#endif
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "cpc/core/error.hpp"
#include "cpc/dist/communicator.hpp"

namespace cpc {

/// Settings of `mpi_communicator`.
struct mpi_options {
  /// Seconds one collective may take, from the call until every rank has taken part, before this
  /// rank gives up with `cpc::communication_error`. It bounds how long the others wait for a rank
  /// that died or hangs, so it must exceed the longest gap between two collectives of a healthy
  /// run: a training step plus a checkpoint write (and, for the first one, loading the data).
  double timeout_seconds = 300;
  /// Appended to the time-out message: what the user can change (a program names its option).
  std::string timeout_hint = "mpi_options::timeout_seconds";
};

namespace detail {
/// Seconds on a monotonic clock.
inline double mpi_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<std::size_t>(len));
}
/// The message written by `mpi_environment::on_termination`'s handler (async-signal-safe use).
inline char termination_message[1024];
inline volatile std::sig_atomic_t termination_length = 0;
inline void mpi_termination_handler(int sig) {
  if (termination_length > 0) {
    [[maybe_unused]] const auto n =
        ::write(STDERR_FILENO, termination_message, static_cast<std::size_t>(termination_length));
  }
  ::_exit(128 + sig);
}
}  // namespace detail

/// Starts MPI for the life of the object (MPI_Init_thread, MPI_THREAD_FUNNELED: only the thread
/// that made it calls MPI; cpc's worker threads never do) and ends it (MPI_Finalize). Make one
/// in `main` before any `mpi_communicator`, only when `launched()`: a program started without
/// mpirun then runs alone without touching MPI.
/// Errors: `cpc::communication_error` when MPI cannot be initialised.
class mpi_environment {
 public:
  /// Whether an MPI launcher started this process: mpirun / mpiexec of Open MPI
  /// (OMPI_COMM_WORLD_SIZE), of MPICH and Intel MPI (PMI_SIZE), or a PMIx launcher such as
  /// Slurm's srun (PMIX_RANK).
  static bool launched() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
      if (std::getenv(v) != nullptr) return true;
    return false;
  }

  mpi_environment(int* argc, char*** argv) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      if (const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided); rc != MPI_SUCCESS)
        throw communication_error("MPI_Init_thread failed: " + detail::mpi_error_text(rc));
      owner_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  mpi_environment(const mpi_environment&) = delete;
  mpi_environment& operator=(const mpi_environment&) = delete;
  /// MPI_Finalize (when this object initialised MPI and MPI is not finalised yet).
  ~mpi_environment() {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (owner_ && !finalised) MPI_Finalize();
  }

  /// Rank in MPI_COMM_WORLD.
  std::size_t rank() const { return static_cast<std::size_t>(rank_); }
  /// Processes in MPI_COMM_WORLD.
  std::size_t size() const { return static_cast<std::size_t>(size_); }

  /// Ends this rank's part of the job with `status`: 0 returns 0 (MPI_Finalize follows in the
  /// destructor); any other status with more than one rank calls MPI_Abort(MPI_COMM_WORLD,
  /// status), which ends every rank now (a rank that failed alone must not leave the others
  /// waiting in a collective or in MPI_Finalize). Print the error before calling it.
  int finish(int status) {
    if (status != 0 && size_ > 1) {
      detail::termination_length = 0;  // this rank said why; mpirun's SIGTERM needs no second line
      std::cerr.flush();
      std::cout.flush();
      MPI_Abort(MPI_COMM_WORLD, status);
    }
    return status;
  }

  /// Installs a SIGTERM / SIGINT / SIGHUP handler that writes `message` (a line, up to 1 KB) to
  /// stderr and exits with 128 + the signal. mpirun sends SIGTERM to every rank when one rank
  /// fails, is killed or calls MPI_Abort, so each rank says why it stopped.
  static void on_termination(const std::string& message) {
    const std::size_t n = std::min(message.size(), sizeof(detail::termination_message));
    std::memcpy(detail::termination_message, message.data(), n);
    detail::termination_length = static_cast<std::sig_atomic_t>(n);
    struct sigaction sa {};
    sa.sa_handler = detail::mpi_termination_handler;
    sigemptyset(&sa.sa_mask);
    for (const int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &sa, nullptr);
  }

 private:
  int rank_ = 0, size_ = 1;
  bool owner_ = false;
};

/// `cpc::communicator` over an MPI communicator (default MPI_COMM_WORLD; duplicated, so its
/// traffic and error handler are private). Bounded waits: broadcast, allgather and barrier are
/// the non-blocking MPI calls (MPI_Ibcast, MPI_Iallgather, MPI_Ibarrier) polled with MPI_Test until
/// they complete or `mpi_options::timeout_seconds` pass (then `cpc::communication_error`). The
/// allreduce first waits so for every rank to arrive (MPI_Ibarrier), then runs the blocking
/// MPI_Allreduce (twice as fast as MPI_Iallreduce in Open MPI 4.1), watched by a thread that ends
/// the process should that transfer itself outlast the time-out (a rank died or hangs mid-way).
/// Identical results on every rank: MPI_Allreduce's algorithms in Open MPI and MPICH compute each
/// element's sum once and send it to every rank, or combine the same pairs on every rank (float
/// addition commutes); the MPI standard does not promise it, so `cpc::train` also compares the
/// replicas' weights at every checkpoint.
/// Not copyable. Destroy it before the `mpi_environment`.
/// Errors: every collective throws `cpc::communication_error` "<operation> on rank r of N did not
/// complete within S s: ..." on time-out, or naming MPI's error.
class mpi_communicator final : public communicator {
 public:
  explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD, mpi_options opt = {}) : opt_(opt) {
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    int r = 0, s = 1;
    MPI_Comm_rank(comm_, &r);
    MPI_Comm_size(comm_, &s);
    rank_ = static_cast<std::size_t>(r);
    size_ = static_cast<std::size_t>(s);
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;
  ~mpi_communicator() override {
    if (watchdog_.joinable()) {
      {
        std::lock_guard lock(watch_mutex_);
        stop_watchdog_ = true;
      }
      watch_cv_.notify_one();
      watchdog_.join();
    }
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised && comm_ != MPI_COMM_NULL && !broken_) MPI_Comm_free(&comm_);
  }

  std::size_t rank() const override { return rank_; }
  std::size_t size() const override { return size_; }
  const mpi_options& options() const { return opt_; }
  /// The underlying (duplicated) MPI communicator.
  MPI_Comm native() const { return comm_; }

  void allreduce_sum(float* x, std::size_t n) override { allreduce(x, n, MPI_FLOAT, sizeof(float)); }
  void allreduce_sum(double* x, std::size_t n) override { allreduce(x, n, MPI_DOUBLE, sizeof(double)); }

  void broadcast(void* data, std::size_t bytes, std::size_t root) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < bytes;) {
      const int n = chunk(bytes - done);
      MPI_Request req;
      check(MPI_Ibcast(p + done, n, MPI_BYTE, static_cast<int>(root), comm_, &req), "MPI_Ibcast");
      wait(req, "broadcast");
      done += static_cast<std::size_t>(n);
    }
  }

  void allgather(const void* send, void* recv, std::size_t bytes) override {
    if (bytes > static_cast<std::size_t>(INT_MAX))
      throw config_error("mpi_communicator::allgather: expected at most 2^31 - 1 bytes per rank, got " +
                         std::to_string(bytes));
    MPI_Request req;
    check(MPI_Iallgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE,
                         comm_, &req),
          "MPI_Iallgather");
    wait(req, "allgather");
  }

  void barrier() override {
    MPI_Request req;
    check(MPI_Ibarrier(comm_, &req), "MPI_Ibarrier");
    wait(req, "barrier");
  }

  std::string describe() const override {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, static_cast<std::size_t>(len));
    v = v.substr(0, v.find_first_of(",\n"));
    return "MPI (" + v + "), " + std::to_string(size_) + (size_ == 1 ? " rank" : " ranks");
  }

 private:
  static std::string seconds_text(double s) {
    std::string t = std::to_string(s);
    t.erase(t.find_last_not_of('0') + 1);
    if (!t.empty() && t.back() == '.') t.pop_back();
    return t;
  }
  static int chunk(std::size_t remaining) {
    return static_cast<int>(std::min<std::size_t>(remaining, std::size_t{1} << 30));
  }
  // First every rank arrives (a polled MPI_Ibarrier: waiting for a slower rank is bounded and
  // leaves it the cores), then the blocking MPI_Allreduce, whose tuned algorithms move the data
  // about twice as fast as MPI_Iallreduce's (Open MPI 4.1, 30 MB on this project's machine:
  // tests/tools/allreduce_time.cpp). The watchdog bounds the transfer itself.
  void allreduce(void* x, std::size_t n, MPI_Datatype type, std::size_t scalar) {
    barrier_for("allreduce");
    auto* p = static_cast<char*>(x);
    for (std::size_t done = 0; done < n;) {
      const int m = chunk(n - done);
      watch("allreduce");
      const int rc = MPI_Allreduce(MPI_IN_PLACE, p + done * scalar, m, type, MPI_SUM, comm_);
      unwatch();
      check(rc, "MPI_Allreduce");
      done += static_cast<std::size_t>(m);
    }
  }
  void barrier_for(const char* what) {
    MPI_Request req;
    check(MPI_Ibarrier(comm_, &req), "MPI_Ibarrier");
    wait(req, what);
  }
  // The watchdog: a thread that ends this process when one blocking call lasts longer than the
  // time-out (every rank had arrived, so a rank died or hangs in the middle of the transfer, and
  // no exception can leave the call); mpirun then ends the job.
  void watch(const char* what) {
    std::lock_guard lock(watch_mutex_);
    if (!watchdog_.joinable()) watchdog_ = std::thread([this] { watchdog(); });
    watched_ = what;
    watched_since_ = detail::mpi_now();
    watch_cv_.notify_one();
  }
  void unwatch() {
    std::lock_guard lock(watch_mutex_);
    watched_ = nullptr;
  }
  void watchdog() {
    std::unique_lock lock(watch_mutex_);
    while (!stop_watchdog_) {
      if (watched_ == nullptr) {
        watch_cv_.wait(lock);
        continue;
      }
      const double left = watched_since_ + opt_.timeout_seconds - detail::mpi_now();
      if (left > 0) {
        watch_cv_.wait_for(lock, std::chrono::duration<double>(left));
        continue;
      }
      const std::string message = "\ncpc: " + std::string(watched_) + " on rank " + std::to_string(rank_) +
                                  " of " + std::to_string(size_) + " did not complete within " +
                                  seconds_text(opt_.timeout_seconds) +
                                  " s after every rank had arrived: a rank died or hangs in the transfer (" +
                                  opt_.timeout_hint + "); ending this process\n";
      [[maybe_unused]] const auto w = ::write(STDERR_FILENO, message.data(), message.size());
      std::_Exit(1);
    }
  }
  void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    broken_ = true;
    throw communication_error(std::string(what) + " on rank " + std::to_string(rank_) + " of " +
                              std::to_string(size_) + " failed: " + detail::mpi_error_text(rc));
  }
  // Polls `req` with MPI_Test (which also drives the transfer): busily for the first 2 ms, then
  // with 20 us pauses so that a rank that waits for a slower one leaves the cores to it.
  void wait(MPI_Request& req, const char* what) {
    const double start = detail::mpi_now();
    for (;;) {
      int done = 0;
      check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      const double waited = detail::mpi_now() - start;
      if (waited > opt_.timeout_seconds) {
        broken_ = true;  // the request stays pending: the group is unusable; end the job
        throw communication_error(
            std::string(what) + " on rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
            " did not complete within " + seconds_text(opt_.timeout_seconds) +
            " s: another rank died, hangs or is far slower (" + opt_.timeout_hint + ")");
      }
      if (waited > 2e-3) std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  mpi_options opt_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::size_t rank_ = 0, size_ = 1;
  bool broken_ = false;
  std::thread watchdog_;
  std::mutex watch_mutex_;
  std::condition_variable watch_cv_;
  const char* watched_ = nullptr;  // the blocking call under way, if any
  double watched_since_ = 0;
  bool stop_watchdog_ = false;
};

}  // namespace cpc
