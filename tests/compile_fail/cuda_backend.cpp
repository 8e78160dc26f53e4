// Must NOT compile without CPC_WITH_CUDA: the static_assert names how to enable the backend.
#include "cpc/backend/tags.hpp"

template <class Backend>
struct uses_backend {
  CPC_REQUIRE_BACKEND(Backend);
};

int main() {
  uses_backend<cpc::cuda> x;
  (void)x;
}
