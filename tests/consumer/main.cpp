// A downstream project: includes the umbrella header of the installed package, runs a layer and
// reports the CPU-feature check. Built twice (tests/consumer/CMakeLists.txt): with cpc::cpc alone
// and with cpc::native; run.cmake checks what each prints.
#include <cpc/core/cpu_features.hpp>
#include <cpc/cpc.hpp>

#include <cstdio>

int main() {
  cpc::tensor3<float> x = xt::ones<float>({2, 4, 3});
  cpc::rng init(7);
  cpc::linear<float> layer({.in_features = 3, .out_features = 5}, init);
  cpc::tensor3<float> y;
  layer.forward(x, y);
  if (y.shape()[0] != 2 || y.shape()[1] != 4 || y.shape()[2] != 5) return 1;
  std::printf("cpc consumer ok: y[0,0,0] = %g\n", static_cast<double>(y(0, 0, 0)));
  const auto unused = cpc::unused_cpu_features(cpc::compiled_cpu_features(), cpc::running_cpu_features());
  std::printf("unused cpu features: [%s]\n", unused.c_str());
  // Called twice: the warning (stderr) must appear at most once.
  cpc::warn_if_cpu_features_unused();
  cpc::warn_if_cpu_features_unused();
  return 0;
}
