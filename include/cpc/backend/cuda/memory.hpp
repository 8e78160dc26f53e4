#pragma once
/// Device memory of the CUDA backend: `device_buffer<T>` (flat, cudaMalloc'd) and
/// `device_tensor<T, N>` (shaped), the `cuda_memory` space that `cpc::cuda` names (so
/// `buffer_for<T, cuda>` and `tensor_for<T, N, cuda>` are these), and the explicit moves between
/// host and device: `to<cuda>(host tensor)`, `to<cpu>(device tensor)`, `upload` / `download`.
/// CPU code never dereferences device memory; every transfer is a call here. Plain C++ on the
/// CUDA runtime C API (compiles with any host compiler that sees the toolkit's headers).
/// Errors: `cpc::device_error` naming the call, the sizes and the CUDA message (out of memory, no
/// device); a zero-sized buffer needs no device, so building empty buffers never fails.
/// Source: DESIGN.md "storage is allocated by its backend; data moves between backends only explicitly".
#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpc/backend/cuda/runtime.hpp"
#include "cpc/backend/storage.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Device memory exists wherever this header is included, kernels or not (see storage.hpp).
template <>
inline constexpr bool memory_available<cuda> = true;

/// Flat device storage of `size()` scalars of a trivially copyable `T`, in the current CUDA device's
/// global memory (cudaMalloc, so 256-byte aligned). Value semantics: copies are deep (device to
/// device), moves steal. `resize` keeps the contents and zero-fills the new tail, like a vector.
/// All transfers run on this thread's stream (`cudaStreamPerThread`) and have finished when the
/// call returns. Errors: `device_error` when an allocation or transfer fails (the message names
/// the bytes requested and the CUDA message, e.g. cudaErrorMemoryAllocation).
template <class T>
class device_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "cpc::device_buffer: T must be trivially copyable");

 public:
  using value_type = T;

  device_buffer() = default;
  /// n scalars, zero-filled (as a host buffer of n value-initialised scalars).
  explicit device_buffer(std::size_t n) { resize(n); }
  /// n copies of `value`.
  device_buffer(std::size_t n, const T& value) { assign(n, value); }
  device_buffer(const device_buffer& o) { *this = o; }
  device_buffer(device_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  device_buffer& operator=(const device_buffer& o) {
    if (this == &o) return *this;
    reserve_exact(o.size_, false);
    size_ = o.size_;
    if (size_ > 0)
      cuda_detail::check(cudaMemcpyAsync(data_, o.data_, bytes(size_), cudaMemcpyDeviceToDevice, stream()),
                         "device_buffer copy", [&] { return sizes(size_); });
    return *this;
  }
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~device_buffer() { release(); }

  /// Device pointer to the first scalar (null when nothing was ever allocated).
  T* data() { return data_; }
  const T* data() const { return data_; }
  /// Number of scalars.
  std::size_t size() const { return size_; }
  /// Whether size() == 0.
  bool empty() const { return size_ == 0; }

  /// Grows or shrinks to n scalars; kept contents stay, new ones are 0. Never frees on shrinking.
  void resize(std::size_t n) {
    if (n > capacity_) reserve_exact(n, true);
    if (n > size_)
      cuda_detail::check(cudaMemsetAsync(data_ + size_, 0, bytes(n - size_), stream()),
                         "device_buffer resize", [&] { return sizes(n); });
    size_ = n;
  }

  /// n copies of `value` (uploaded from the host; zero by cudaMemset).
  void assign(std::size_t n, const T& value) {
    reserve_exact(n, false);
    size_ = n;
    if (n == 0) return;
    if (is_zero(value)) {
      cuda_detail::check(cudaMemsetAsync(data_, 0, bytes(n), stream()), "device_buffer assign",
                         [&] { return sizes(n); });
      return;
    }
    const std::vector<T> host(n, value);
    upload(host.data(), n);
  }

  /// The host range [first, last) (forward iterators over values convertible to T), uploaded.
  template <class It>
  requires(!std::is_integral_v<It>) void assign(It first, It last) {
    const std::vector<T> host(first, last);
    reserve_exact(host.size(), false);
    size_ = host.size();
    if (size_ > 0) upload(host.data(), size_);
  }

  /// Copies n scalars from host memory `src` to scalars [offset, offset + n) of this buffer.
  /// Errors: `device_error` when the range is outside the buffer or the copy fails.
  void upload(const T* src, std::size_t n, std::size_t offset = 0) {
    if (offset + n > size_)
      cuda_detail::fail(
          "device_buffer upload", sizes(size_),
          "range [" + std::to_string(offset) + ", " + std::to_string(offset + n) + ") outside the buffer");
    if (n == 0) return;
    cuda_detail::check(cudaMemcpyAsync(data_ + offset, src, bytes(n), cudaMemcpyHostToDevice, stream()),
                       "device_buffer upload", [&] { return sizes(n); });
    cuda_detail::check(cudaStreamSynchronize(stream()), "device_buffer upload", [&] { return sizes(n); });
  }

  /// Copies scalars [offset, offset + n) of this buffer to host memory `dst`, after every op this
  /// thread issued before. Errors: as `upload`; also reports faults of earlier asynchronous kernels.
  void download(T* dst, std::size_t n, std::size_t offset = 0) const {
    if (offset + n > size_)
      cuda_detail::fail(
          "device_buffer download", sizes(size_),
          "range [" + std::to_string(offset) + ", " + std::to_string(offset + n) + ") outside the buffer");
    if (n == 0) return;
    cuda_detail::check(cudaMemcpyAsync(dst, data_ + offset, bytes(n), cudaMemcpyDeviceToHost, stream()),
                       "device_buffer download", [&] { return sizes(n); });
    cuda_detail::check(cudaStreamSynchronize(stream()), "device_buffer download", [&] { return sizes(n); });
  }

  /// A host copy of the whole buffer.
  std::vector<T> to_host() const {
    std::vector<T> out(size_);
    download(out.data(), size_);
    return out;
  }

 private:
  static cudaStream_t stream() { return cudaStreamPerThread; }
  static std::size_t bytes(std::size_t n) { return n * sizeof(T); }
  static std::string sizes(std::size_t n) {
    return std::to_string(n) + " x " + std::to_string(sizeof(T)) + " bytes = " + std::to_string(bytes(n)) +
           " bytes";
  }
  static bool is_zero(const T& v) {
    const T zero{};
    const auto* a = reinterpret_cast<const unsigned char*>(&v);
    const auto* b = reinterpret_cast<const unsigned char*>(&zero);
    for (std::size_t i = 0; i < sizeof(T); ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
  // Makes capacity >= n (exactly n when growing), keeping the contents when `keep`.
  void reserve_exact(std::size_t n, bool keep) {
    if (n <= capacity_) return;
    cuda_detail::require_device("device_buffer allocation");
    T* p = nullptr;
    cuda_detail::check(cudaMalloc(reinterpret_cast<void**>(&p), bytes(n)), "device_buffer allocation",
                       [&] { return sizes(n); });
    if (keep && size_ > 0) {
      const cudaError_t e = cudaMemcpyAsync(p, data_, bytes(size_), cudaMemcpyDeviceToDevice, stream());
      if (e != cudaSuccess) {
        (void)cudaFree(p);
        cuda_detail::check(e, "device_buffer resize", [&] { return sizes(n); });
      }
    }
    release();
    data_ = p;
    capacity_ = n;
    if (!keep) size_ = 0;
  }
  void release() noexcept {
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
    capacity_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

/// Grows `b` to at least n scalars (`ensure_size`) for op `op`: a failure (out of device memory)
/// is a `device_error` that names the op and its `sizes()` before the allocation's own message.
template <class T, class Sizes>
void ensure_device_size(device_buffer<T>& b, std::size_t n, std::string_view op, Sizes&& sizes) {
  if (b.size() >= n) return;
  try {
    b.resize(n);
  } catch (const device_error& e) {
    cuda_detail::fail(op, sizes(), std::string("workspace: ") + e.what());
  }
}

/// Shaped device tensor: a `device_buffer<T>` plus a row-major shape `[N]`. The interface the
/// layers use of a host tensor that does not touch elements: `shape()`, `size()`, `data()`,
/// `resize(shape)`, `dimension()` (so `check_shape` and `ensure_shape` work on it).
/// Errors: as `device_buffer`.
template <class T, std::size_t N>
class device_tensor {
 public:
  using value_type = T;
  using shape_type = std::array<std::size_t, N>;

  device_tensor() = default;
  /// Zero-filled tensor of `shape`.
  explicit device_tensor(const shape_type& shape) { resize(shape); }

  /// The extents.
  const shape_type& shape() const { return shape_; }
  /// Number of scalars (product of the extents).
  std::size_t size() const { return buffer_.size(); }
  /// Rank N.
  static constexpr std::size_t dimension() { return N; }
  /// Device pointer to the first scalar.
  T* data() { return buffer_.data(); }
  const T* data() const { return buffer_.data(); }
  /// The storage.
  device_buffer<T>& buffer() { return buffer_; }
  const device_buffer<T>& buffer() const { return buffer_; }

  /// Sets the shape (any sized range of N extents); contents are kept only where the size does not
  /// grow (as xtensor's resize, do not rely on them).
  template <class S>
  void resize(const S& shape) {
    std::size_t n = 1, i = 0;
    for (auto d : shape) {
      if (i < N) shape_[i] = static_cast<std::size_t>(d);
      n *= static_cast<std::size_t>(d);
      ++i;
    }
    if (i != N)
      throw shape_error("device_tensor::resize: expected " + std::to_string(N) + " extents, got " +
                        std::to_string(i));
    buffer_.resize(n);
  }

 private:
  shape_type shape_{};
  device_buffer<T> buffer_;
};

/// The memory space of `cpc::cuda`: device buffers and tensors that CPU code cannot dereference.
struct cuda_memory {
  template <class T>
  using buffer = device_buffer<T>;
  template <class T, std::size_t N>
  using tensor = device_tensor<T, N>;
  /// Whether CPU code may dereference pointers into this memory.
  static constexpr bool host_accessible = false;
};

/// A device copy of host tensor `t` (any xtensor expression with `data()` and `shape()`,
/// contiguous and row-major), shape kept. Errors: `device_error` as `device_buffer::upload`.
template <class Dst, class Tensor>
requires std::is_same_v<Dst, cuda>
auto to(const Tensor& t) {
  using T = std::remove_cv_t<std::remove_reference_t<decltype(*t.data())>>;
  constexpr std::size_t N = std::tuple_size_v<std::remove_cvref_t<decltype(t.shape())>>;
  device_tensor<T, N> out;
  out.resize(t.shape());
  out.buffer().upload(t.data(), out.size());
  return out;
}

/// A copy of device tensor `t` allocated by `Dst`: a host tensor (`tensor_for<T, N, Dst>`) for the
/// host backends, another device tensor for `cuda`. Errors: `device_error` as the transfers.
template <class Dst, class T, std::size_t N>
auto to(const device_tensor<T, N>& t) {
  if constexpr (host_accessible<Dst>) {
    tensor_for<T, N, Dst> out(t.shape());
    t.buffer().download(out.data(), t.size());
    return out;
  } else {
    return device_tensor<T, N>(t);
  }
}

}  // namespace cpc
