// A downstream project: includes the umbrella header of the installed package and runs a layer.
#include <cpc/cpc.hpp>

#include <cstdio>

int main() {
  cpc::rng gen(1);
  cpc::tensor3<float> x = xt::ones<float>({2, 4, 3});
  cpc::rng init(7);
  cpc::linear<float> layer({.in_features = 3, .out_features = 5}, init);
  cpc::tensor3<float> y;
  layer.forward(x, y);
  if (y.shape()[0] != 2 || y.shape()[1] != 4 || y.shape()[2] != 5) return 1;
  std::printf("cpc consumer ok: y[0,0,0] = %g\n", static_cast<double>(y(0, 0, 0)));
  return 0;
}
