// Must NOT compile: the CUDA backend has no conv2d kernel (the image model's ops are not ported), so
// calling the op on cpc::cuda stops with the dispatcher's one message naming the op.
#include <cpc/backend/cuda.cuh>

int main() {
  cpc::ops::conv2d_workspace<cpc::cuda, float> ws;
  cpc::ops::conv2d_forward<cpc::cuda>(cpc::ops::conv2d_forward_args<float>{}, ws);
}
