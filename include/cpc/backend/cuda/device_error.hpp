#pragma once
/// The error type of the CUDA backend. Plain C++ (no CUDA headers), so host code can catch it
/// without the toolkit. Source: issue 13 ("errors from CUDA/cuBLAS become a typed cpc::device_error
/// naming the op, the sizes and the CUDA message").
#include "cpc/core/error.hpp"

namespace cpc {

/// A CUDA runtime or cuBLAS call failed: no usable device (no GPU, no driver), out of device
/// memory, a bad launch, or a fault of an earlier asynchronous kernel. The message reads
/// "cpc::cuda <op> (<sizes>): <CUDA error name>: <CUDA message>". Asynchronous faults are
/// reported by the first checked call after them; run with CPC_CUDA_SYNC=1 to check after every op.
class device_error : public error {
 public:
  using error::error;
};

}  // namespace cpc
