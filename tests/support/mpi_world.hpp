#pragma once
// The MPI group of a distributed test executable (tests/support/doctest_mpi_main.cpp): every rank
// runs the same test case; a failure on any rank fails the run on every rank.
#include <cpc/dist/mpi.hpp>

/// MPI_COMM_WORLD of the test run, with a 30 s deadline per collective (a broken test ends in
/// seconds, not at ctest's time-out).
cpc::mpi_communicator& test_world();
