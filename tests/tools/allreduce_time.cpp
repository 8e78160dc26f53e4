// Times the gradient allreduce of data-parallel training (issue 18) on the paper's audio model:
// one allreduce (sum, then the mean) over its flat gradient buffer, as `cpc::train` runs it each
// step, against MPI's blocking MPI_Allreduce and a busy-polled MPI_Iallreduce. Every repetition
// starts after a barrier, so the times are transfer and reduction only (no waiting for a slower
// rank); printed: the median and minimum over the repetitions of the slowest rank's time.
// Usage: mpirun -np N allreduce_time [repetitions]   (scripts/measure-distributed.sh builds it)
#include <cpc/cpc.hpp>
#include <cpc/dist/mpi.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  cpc::mpi_environment env(&argc, &argv);
  const int reps = argc > 1 ? std::atoi(argv[1]) : 20;
  cpc::mpi_communicator world;
  cpc::audio_model<cpc::presets::audio_paper> model;
  const auto& flat = model.parameters().flat;
  const std::size_t n = flat.size;
  std::vector<float> x(n, 1.0f);
  // The slowest rank's time of `op` (MPI_MAX over the ranks): median and minimum.
  const auto time_max = [&](const std::function<void()>& op) {
    std::vector<double> t;
    for (int r = 0; r < reps + 1; ++r) {
      world.barrier();
      const double t0 = now();
      op();
      double dt = now() - t0, slowest = 0;
      MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, world.native());
      t.push_back(slowest);
    }
    t.erase(t.begin());
    std::sort(t.begin(), t.end());
    return std::pair{t[t.size() / 2], t.front()};
  };
  const double bytes = static_cast<double>(n) * sizeof(float);
  const double ranks = static_cast<double>(world.size());
  const auto report = [&](const char* what, std::pair<double, double> t) {
    if (world.rank() != 0) return;
    // A ring allreduce sends and receives 2 (N - 1) / N times the buffer per rank.
    const double moved = 2 * (ranks - 1) / ranks * bytes;
    std::printf("%-44s median %7.2f ms  min %7.2f ms  (%.2f GB/s per rank, ring volume)\n", what,
                1e3 * t.first, 1e3 * t.second, moved / t.first / 1e9);
  };
  if (world.rank() == 0)
    std::printf(
        "%s; paper model: %zu parameters, flat gradient buffer %zu floats = %.1f MB; %d repetitions\n",
        world.describe().c_str(), model.parameter_count(), n, bytes / 1e6, reps);
  report("cpc::allreduce_mean (Iallreduce, polled)",
         time_max([&] { cpc::allreduce_mean(world, x.data(), n); }));
  report("MPI_Allreduce (blocking)", time_max([&] {
           MPI_Allreduce(MPI_IN_PLACE, x.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, world.native());
         }));
  report("MPI_Iallreduce + busy MPI_Test", time_max([&] {
           MPI_Request req;
           MPI_Iallreduce(MPI_IN_PLACE, x.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, world.native(),
                          &req);
           int done = 0;
           while (!done) MPI_Test(&req, &done, MPI_STATUS_IGNORE);
         }));
  return 0;
}
