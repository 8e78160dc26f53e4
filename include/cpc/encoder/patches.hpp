#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Geometry of a grid of overlapping square patches (van den Oord et al. 2018, section 3.2: a
/// 256x256 image cut into a 7x7 grid of 64x64 patches with 50% overlap). The image is first
/// zero-padded by `padding` pixels on every side; patch (r, c) then covers padded rows
/// [r*stride, r*stride + size) and columns [c*stride, c*stride + size). The default is the
/// analogue for 28x28 digits: 8x8 patches, stride 4, padding 2 -> a 7x7 grid.
struct patch_grid {
  std::size_t size = 8;
  std::size_t stride = 4;
  std::size_t padding = 2;

  /// Patches along an axis of `extent` pixels: (extent + 2*padding - size) / stride + 1.
  /// Errors: `cpc::config_error` for a zero size or stride; `cpc::shape_error` when the padded
  /// extent is smaller than one patch.
  std::size_t count(std::size_t extent) const {
    if (size == 0 || stride == 0)
      throw config_error("patch_grid: expected size > 0 and stride > 0, got " + std::to_string(size) +
                         " and " + std::to_string(stride));
    if (extent + 2 * padding < size)
      throw shape_error(
          "patch_grid: expected an image extent >= " + std::to_string(size - std::min(size, 2 * padding)) +
          ", got " + std::to_string(extent));
    return (extent + 2 * padding - size) / stride + 1;
  }
};

/// Cuts images into the patches of `grid`, row-major over the grid:
/// patches[(b * rows + r) * cols + c, u, v, ch] = padded image b at (r*stride + u, c*stride + v, ch)
/// (0 in the padding). Shapes: images `[B, H, W, C]` -> patches resized to
/// `[B * rows * cols, size, size, C]`, rows = grid.count(H), cols = grid.count(W). Runs the
/// `extract_patches` op of `Backend` (backend/op/patches.hpp).
/// Errors: as `patch_grid::count`.
template <class Backend = cpu, class T>
void extract_patches(const tensor4<T>& images, const patch_grid& grid, tensor4<T>& patches) {
  const std::size_t B = images.shape()[0], H = images.shape()[1], W = images.shape()[2],
                    C = images.shape()[3];
  const std::size_t rows = grid.count(H), cols = grid.count(W), P = grid.size;
  ensure_shape(patches, std::array<std::size_t, 4>{B * rows * cols, P, P, C});
  ops::extract_patches<Backend>(ops::extract_patches_args<T>{.batch = B,
                                                             .height = H,
                                                             .width = W,
                                                             .channels = C,
                                                             .size = P,
                                                             .stride = grid.stride,
                                                             .padding = grid.padding,
                                                             .rows = rows,
                                                             .cols = cols,
                                                             .images = images.data(),
                                                             .patches = patches.data()});
}

}  // namespace cpc
