// Must NOT compile: cpc::cuda has no kernels in this version, whatever CPC_WITH_CUDA says; the
// static_assert says so in one message.
#include "cpc/backend/tags.hpp"

template <class Backend>
struct uses_backend {
  CPC_REQUIRE_BACKEND(Backend);
};

int main() {
  uses_backend<cpc::cuda> x;
  (void)x;
}
