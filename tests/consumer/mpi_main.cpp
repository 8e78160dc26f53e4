// A downstream project's MPI program (tests/consumer/CMakeLists.txt, when the installed cpc has
// cpc::mpi): run alone it must not start MPI; under mpirun it would average over the ranks.
#include <cpc/dist/mpi.hpp>
#ifndef CPC_WITH_MPI
#error "cpc::mpi defines CPC_WITH_MPI"
#endif

#include <cstdio>
#include <optional>

int main(int argc, char** argv) {
  std::optional<cpc::mpi_environment> env;
  std::optional<cpc::mpi_communicator> world;
  cpc::local_communicator alone;
  cpc::communicator* group = &alone;
  if (cpc::mpi_environment::launched()) {
    env.emplace(&argc, &argv);
    world.emplace();
    group = &*world;
  }
  float x[2] = {1.0f, static_cast<float>(group->rank())};
  cpc::allreduce_mean(*group, x, 2);
  std::printf("cpc mpi consumer ok: %s, mean %g %g\n", group->describe().c_str(), static_cast<double>(x[0]),
              static_cast<double>(x[1]));
  return 0;
}
