// Must NOT compile: a backend that is available but has no kernel for an op stops at the op's one
// static_assert, which names the op (the instantiation note names the backend).
#include "cpc/backend/ops.hpp"

struct bare_backend {
  using memory = cpc::host_memory;
};
template <>
inline constexpr bool cpc::backend_available<bare_backend> = true;

int main() {
  float c = 0;
  cpc::ops::gemm_workspace<bare_backend, float> ws;
  cpc::ops::gemm<bare_backend>(cpc::ops::gemm_args<float>{.m = 1, .n = 1, .k = 0, .c = &c, .ldc = 1}, ws);
}
