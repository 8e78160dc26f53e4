// doctest main for tests that run as several MPI ranks (`mpirun --oversubscribe -np 2 <test>`):
// every rank runs the selected test cases; rank 0 reports in full, the others only their
// failures; the exit status is a failure on every rank when any rank failed. Started without
// mpirun it can only list its test cases (ctest's registration) and otherwise exits with 77.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>
#include <exception>
#include <iostream>
#include <memory>

#include "support/mpi_world.hpp"

namespace {
cpc::mpi_communicator* world = nullptr;
}

cpc::mpi_communicator& test_world() {
  return *world;
}

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  if (!cpc::mpi_environment::launched()) {
    for (int i = 1; i < argc; ++i)
      if (std::strncmp(argv[i], "--list", 6) == 0 || std::strncmp(argv[i], "-l", 2) == 0)
        return context.run();
    std::cerr << argv[0] << ": run me with mpirun --oversubscribe -np 2 (skipped)\n";
    return 77;
  }
  cpc::mpi_environment env(&argc, &argv);
  double failed = 0;
  {
    cpc::mpi_communicator w(MPI_COMM_WORLD, {.timeout_seconds = 30});
    world = &w;
    if (w.rank() != 0) context.setOption("minimal", true);
    try {
      failed = context.run() != 0 ? 1 : 0;
      w.allreduce_sum(&failed, 1);
    } catch (const std::exception& e) {
      std::cerr << "rank " << w.rank() << ": " << e.what() << '\n';
      return env.finish(1);
    }
    world = nullptr;
  }
  return failed > 0 ? env.finish(1) : 0;
}
