// Must NOT compile: an op that has a cpu kernel but no CUDA kernel (here one declared by this file,
// as a new op of the seam would be), called on cpc::cuda, stops with the dispatcher's one message
// naming the op.
#include <cpc/backend/cuda.cuh>

namespace cpc::ops {
template <class T>
struct halve_args {
  std::size_t n = 0;
  T* y = nullptr;
};
template <class T>
void run(cpu, const halve_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) a.y[i] /= 2;
}
template <class Backend, class T>
void halve(const halve_args<T>& a) {
  CPC_DISPATCH("halve", Backend, a);
}
}  // namespace cpc::ops

int main() {
  cpc::ops::halve<cpc::cuda>(cpc::ops::halve_args<float>{});
}
