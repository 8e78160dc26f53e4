// Times the gradient allreduce of data-parallel training (issue 18) on the paper's audio model:
// cpc::allreduce_mean over its flat gradient buffer, as `cpc::train` runs it each step, against
// MPI's blocking MPI_Allreduce and a busy-polled MPI_Iallreduce. Each repetition times every
// variant once, in turn, each after a barrier (so the times are arrival, transfer and reduction,
// with no waiting for a slower rank); printed: median and minimum of the slowest rank's time.
// Usage: mpirun -np N allreduce_time [repetitions]   (scripts/measure-distributed.sh builds it)
#include <cpc/cpc.hpp>
#include <cpc/dist/mpi.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
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
  const std::size_t n = model.parameters().flat.size;
  std::vector<float> x(n, 1.0f);
  const std::vector<std::pair<std::string, std::function<void()>>> variants{
      {"cpc::allreduce_mean (as cpc::train)", [&] { cpc::allreduce_mean(world, x.data(), n); }},
      {"MPI_Allreduce (blocking)",
       [&] {
         MPI_Allreduce(MPI_IN_PLACE, x.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, world.native());
       }},
      {"MPI_Iallreduce + busy MPI_Test", [&] {
         MPI_Request req;
         MPI_Iallreduce(MPI_IN_PLACE, x.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, world.native(),
                        &req);
         int done = 0;
         while (!done) MPI_Test(&req, &done, MPI_STATUS_IGNORE);
       }}};
  std::vector<std::vector<double>> times(variants.size());
  for (int r = 0; r < reps + 1; ++r)
    for (std::size_t v = 0; v < variants.size(); ++v) {
      world.barrier();
      const double t0 = now();
      variants[v].second();
      double dt = now() - t0, slowest = 0;
      MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, world.native());
      if (r > 0) times[v].push_back(slowest);  // repetition 0 warms up
    }
  if (world.rank() == 0) {
    const double bytes = static_cast<double>(n) * sizeof(float), ranks = static_cast<double>(world.size());
    std::printf(
        "%s; paper model: %zu parameters, flat gradient buffer %zu floats = %.1f MB; %d repetitions\n",
        world.describe().c_str(), model.parameter_count(), n, bytes / 1e6, reps);
    for (std::size_t v = 0; v < variants.size(); ++v) {
      auto& t = times[v];
      std::sort(t.begin(), t.end());
      // A ring allreduce sends and receives 2 (N - 1) / N times the buffer per rank.
      const double moved = 2 * (ranks - 1) / ranks * bytes, median = t[t.size() / 2];
      std::printf("%-38s median %7.2f ms  min %7.2f ms  (%.2f GB/s per rank, ring volume)\n",
                  variants[v].first.c_str(), 1e3 * median, 1e3 * t.front(), moved / median / 1e9);
    }
  }
  return 0;
}
