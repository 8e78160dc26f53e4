// Must NOT compile: cpc::cuda has no kernels in this version, whatever CPC_WITH_CUDA says. A whole
// model on it, its optimiser and a transfer to it report one readable error in all
// (tests/compile_fail/expect_one_error.cmake counts them), never a cascade and never CPU code.
#include "cpc/cpc.hpp"

using cuda_model = cpc::model<cpc::presets::audio_tiny, cpc::strided_conv_encoder, cpc::gru, cpc::info_nce,
                              float, cpc::cuda>;

int main() {
  cuda_model m{};
  cpc::adam<float, cpc::cuda> opt(m.parameters(), {});
  const cpc::tensor<float, 2> audio({1, 1600});
  auto on_device = cpc::to<cpc::cuda>(audio);
  (void)m.evaluate(on_device);
  opt.step();
}
