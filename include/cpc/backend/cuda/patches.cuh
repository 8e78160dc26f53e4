#pragma once
/// cuda kernels of the patch ops (backend/op/patches.hpp): element-wise launches of the bodies in
/// backend/cuda/body/conv2d.hpp (means in double). Every pointer is device memory. Errors: `device_error`.
#include <cstddef>
#include <string>

#include "cpc/backend/cuda/body/conv2d.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/op/patches.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// cuda extract_patches: one thread per patch element.
template <class T>
void run(cuda, const extract_patches_args<T>& a) {
  cuda_detail::launch_elements(
      "extract_patches", a, a.batch * a.rows * a.cols * a.size * a.size * a.channels, [&] {
        return "batch=" + std::to_string(a.batch) + ", image " + std::to_string(a.height) + "x" +
               std::to_string(a.width) + "x" + std::to_string(a.channels) + ", patch " +
               std::to_string(a.size) + ", grid " + std::to_string(a.rows) + "x" + std::to_string(a.cols);
      });
}

/// cuda patch_mean_pool: one thread per mean.
template <class T>
void run(cuda, const patch_mean_pool_args<T>& a) {
  cuda_detail::launch_elements("patch_mean_pool", a, a.patches * a.channels, [&] {
    return "patches=" + std::to_string(a.patches) + ", pixels=" + std::to_string(a.pixels) +
           ", channels=" + std::to_string(a.channels);
  });
}

/// cuda patch_mean_pool_backward: one thread per input gradient element.
template <class T>
void run(cuda, const patch_mean_pool_backward_args<T>& a) {
  cuda_detail::launch_elements("patch_mean_pool_backward", a, a.patches * a.pixels * a.channels, [&] {
    return "patches=" + std::to_string(a.patches) + ", pixels=" + std::to_string(a.pixels) +
           ", channels=" + std::to_string(a.channels);
  });
}

}  // namespace cpc::ops
