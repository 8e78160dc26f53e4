#pragma once
/// cpu kernels of the 1-D convolution ops (backend/op/conv1d.hpp), first moved from the former
/// `cpc::conv1d` layer.
///
/// How it runs: with channel-last storage the receptive field of output t, x[b, t*s - p ..
/// t*s - p + K - 1, :], is K*C_in consecutive scalars, and consecutive outputs start s*C_in
/// scalars apart. So the im2col matrix of a batch item is a strided view of x itself
/// (`[T_out, K*C_in]`, row stride s*C_in) and the forward pass is one GEMM against the weight
/// (packed once per call, `cpu_kernels::gemm`), without copying the input. Only the few outputs
/// whose window reaches into the padding read a small gathered copy. d weight is the GEMM
/// im2col^T dy and d input K GEMMs dy W_k into strided views of dx. Narrow windows (K*C_in <= 16,
/// e.g. the first layer on raw audio) use a direct loop instead of a GEMM with a tiny inner
/// dimension. Results do not depend on the thread count (see cpu_kernels::gemm).
///
/// Row independence: an output frame of the forward pass (and a row of d input) depends only on
/// the samples of its window, bit for bit - not on its position in the buffer, on the number of
/// frames, or on the task, row block or edge segment it falls in. The GEMM guarantees this for its
/// rows; the direct loop runs every frame and channel through the same fused multiply-adds
/// (partial blocks on zero-padded copies). Streaming (cpc::context_stream) relies on it.
#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/backend/cpu/gemm.hpp"
#include "cpc/backend/op/conv1d.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

/// cpu scratch of the conv1d ops, kept by the layer across calls.
template <class T>
struct conv1d_workspace<cpu, T> {
  host_buffer<T> wkc;       ///< weight as `[K, C_in, C_pad]` for the direct loop (see reorder_weight)
  host_buffer<T> bias_pad;  ///< bias (or zeros) padded to C_pad channels (direct loop)
  host_buffer<T> dwkc;      ///< d weight in the `[C_out, K, C_in]` layout (direct loop)
  host_buffer<T> edges;     ///< gathered windows of outputs that touch padding `[B, edges, K*C_in]`
  host_buffer<T> dwt;       ///< d weight transposed, `[K*C_in, C_out]` (GEMM path)
  cpu_kernels::packed_rhs<T> wpack, dypack;  ///< forward weight; dy of every frame (d weight)
  cpu_kernels::packed_rhs<T> dxpack;         ///< d input: the taps stacked (see backward_input)
  host_buffer<T> dxdense;                    ///< d input: the same, unpacked (when C_in is not whole panels)
  host_buffer<T> zeros;                      ///< d input: zeros for taps past the kernel
  host_buffer<T> dy_edges;                   ///< d input: dy rows of super rows at the edges
  host_buffer<T> dx_edges;                   ///< d input: scratch super rows at the edges of dx
  std::vector<const T*> frames;              ///< d weight: each frame's window (x or edges)
  std::vector<std::size_t> a_edge, c_edge;   ///< d input: edge buffer row of each super row
};

namespace cpu_detail {

/// The cpu convolution of one call: the shape, the workspace, and the loops over them.
template <class T>
class conv1d_kernel {
 public:
  /// Binds one call's shape and the layer's workspace (both must outlive the kernel object).
  conv1d_kernel(const conv1d_shape& s, conv1d_workspace<cpu, T>& ws) : s_(s), ws_(ws), g_(make_geometry(s)) {}

  /// y = conv1d(x) + bias (bias may be null); see `conv1d_forward_args`.
  void forward(const T* x, const T* weight, const T* bias, T* y) {
    gather_edges(x);
    const auto c_out = static_cast<std::ptrdiff_t>(s_.c_out);
    const bool direct = window() <= direct_max_window;
    if (direct)
      reorder_weight(weight, bias);
    else
      pack_forward_weight(weight);
    const std::size_t blocks = (g_.t_out + row_block - 1) / row_block;
    parallel_for(0, g_.batch * blocks, [&](std::size_t task) {
      const std::size_t b = task / blocks;
      const std::size_t r0 = (task % blocks) * row_block;
      const std::size_t r1 = std::min(g_.t_out, r0 + row_block);
      T* yb = y + b * g_.t_out * s_.c_out;
      if (direct) {
        for_each_segment(x, b, r0, r1,
                         [&](std::size_t t0, std::ptrdiff_t n, const T* rows, std::ptrdiff_t stride) {
                           direct_rows(rows, stride, n, yb + t0 * s_.c_out);
                         });
      } else {
        // One GEMM over the block's frames: im2col rows straight from x, edge rows from edges.
        alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
        cpu_kernels::gemm_rows<T>(
            r1 - r0, [&](std::size_t i) { return window(x, b, r0 + i); }, ws_.wpack, yb + r0 * s_.c_out,
            c_out, false, work.data());
      }
      if (bias != nullptr && !direct)
        cpu_kernels::matrix_map(yb + r0 * s_.c_out, static_cast<std::ptrdiff_t>(r1 - r0), c_out).rowwise() +=
            cpu_kernels::row_vector_map(bias, c_out);
    });
  }

  /// d weight += ..., d bias += ... (d_bias may be null); see `conv1d_backward_params_args`.
  void backward_params(const T* x, const T* dy, T* d_weight, T* d_bias) {
    gather_edges(x);
    if (window() <= direct_max_window)
      parameter_gradients(x, dy, d_weight, d_bias);
    else
      parameter_gradients_gemm(x, dy, d_weight, d_bias);
  }

  /// dx[b, u, :] = sum over (t, k) with t*s + k - p = u of dy[b, t, :] W_k, W_k = weight[:, :, k],
  /// as one GEMM per task (see `input_geometry`): with q = ceil(K / s), "super row" v of dx (the s
  /// rows u = v*s - p .. v*s - p + s - 1, contiguous) is
  ///   dx_v = [dy[v-q+1], ..., dy[v]] B,   B[(j, o), (r, c)] = weight[o, c, (q-1-j)*s + r] (0 past K),
  /// a [q*C_out] x [q*C_out, s*C_in] product whose A row is q consecutive rows of dy. Every row of
  /// dx is written once, by its super row; super rows that reach past either end of dy or dx go
  /// through small edge buffers. Tasks own blocks of super rows.
  void backward_input(const T* dy, const T* weight, T* dx) {
    const input_geometry g = input_geometry_of();
    const std::size_t c_out = s_.c_out, c_in = s_.c_in, kk = s_.kernel, s = s_.stride;
    const std::size_t a_width = g.q * c_out, c_width = s * c_in;
    // B: row (j, o), column (r, c) holds weight[o, c, k] for k = (q-1-j)*s + r < K (zero otherwise).
    constexpr std::size_t W = cpu_kernels::gemm_tile<T>::cols;
    if (c_in % W == 0) {
      // Packed straight from the weight: within a panel (one r) the columns are K apart.
      const T* zero = zeros_row();
      ws_.dxpack.use_bf16(cpu_kernels::convolution_bf16<T>());
      ws_.dxpack.pack_panels(
          a_width, c_width,
          [&](std::size_t row, std::size_t j0) -> const T* {
            const std::size_t j = row / c_out, o = row % c_out, r = j0 / c_in, k = (g.q - 1 - j) * s + r;
            return k < kk ? weight + (o * c_in + j0 % c_in) * kk + k : zero;
          },
          static_cast<std::ptrdiff_t>(kk));
    } else {
      // Reordered into a dense matrix first (in weight order), then packed.
      ws_.dxdense.assign(a_width * c_width, T(0));
      parallel_for(0, c_out, [&](std::size_t o) {
        for (std::size_t k = 0; k < kk; ++k) {
          const std::size_t j = g.q - 1 - k / s, r = k % s;
          T* dst = ws_.dxdense.data() + (j * c_out + o) * c_width + r * c_in;
          const T* src = weight + o * c_in * kk + k;
          for (std::size_t c = 0; c < c_in; ++c) dst[c] = src[c * kk];
        }
      });
      ws_.dxpack.use_bf16(cpu_kernels::convolution_bf16<T>());
      ws_.dxpack.pack(ws_.dxdense.data(), static_cast<std::ptrdiff_t>(c_width), 1, a_width, c_width);
    }
    // Edge super rows: A rows padded with zero dy rows, C rows in scratch; index of each
    // non-interior super row among those of its item.
    const std::size_t rows = g.v_hi - g.v_lo + 1;
    ws_.a_edge.assign(rows, 0);
    ws_.c_edge.assign(rows, 0);
    std::size_t a_edges = 0, c_edges = 0;
    for (std::size_t v = g.v_lo; v <= g.v_hi; ++v) {
      if (!g.a_interior(v)) ws_.a_edge[v - g.v_lo] = a_edges++;
      if (!g.c_interior(v)) ws_.c_edge[v - g.v_lo] = c_edges++;
    }
    ws_.dy_edges.assign(g_.batch * a_edges * a_width, T(0));
    ws_.dx_edges.resize(g_.batch * c_edges * c_width);
    for (std::size_t b = 0; b < g_.batch; ++b)
      for (std::size_t v = g.v_lo; v <= g.v_hi; ++v) {
        if (g.a_interior(v)) continue;
        T* row = ws_.dy_edges.data() + (b * a_edges + ws_.a_edge[v - g.v_lo]) * a_width;
        for (std::size_t j = 0; j < g.q; ++j) {
          const auto t = static_cast<std::ptrdiff_t>(v + j) - static_cast<std::ptrdiff_t>(g.q - 1);
          if (t >= 0 && t < static_cast<std::ptrdiff_t>(g_.t_out))
            std::copy_n(dy + (b * g_.t_out + static_cast<std::size_t>(t)) * c_out, c_out, row + j * c_out);
        }
      }
    // Blocks of equal size, at most super_row_block rows (no task left with a few rows).
    const std::size_t blocks = (rows + super_row_block - 1) / super_row_block,
                      per = (rows + blocks - 1) / blocks;
    parallel_for(0, g_.batch * blocks, [&](std::size_t task) {
      const std::size_t b = task / blocks, v0 = g.v_lo + (task % blocks) * per;
      const std::size_t v1 = std::min(g.v_hi + 1, v0 + per);
      auto a_row = [&](std::size_t i) -> const T* {
        const std::size_t v = v0 + i;
        if (g.a_interior(v)) return dy + (b * g_.t_out + v + 1 - g.q) * c_out;
        return ws_.dy_edges.data() + (b * a_edges + ws_.a_edge[v - g.v_lo]) * a_width;
      };
      auto c_row = [&](std::size_t i) -> T* {
        const std::size_t v = v0 + i;
        if (g.c_interior(v)) return dx + (b * g_.t_in + v * s - s_.padding) * c_in;
        return ws_.dx_edges.data() + (b * c_edges + ws_.c_edge[v - g.v_lo]) * c_width;
      };
      alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
      // In column slices of about C_in (one dx row of the super row): B's slice stays in cache.
      const std::size_t slice = std::max<std::size_t>(1, c_in / cpu_kernels::gemm_tile<T>::cols);
      for (std::size_t p = 0; p < ws_.dxpack.panels(); p += slice)
        cpu_kernels::gemm_rows_into<T>(v1 - v0, a_row, ws_.dxpack, c_row,
                                       static_cast<std::ptrdiff_t>(c_width), false, work.data(), p,
                                       p + slice);
      // The rows of dx that edge super rows hold.
      for (std::size_t v = v0; v < v1; ++v) {
        if (g.c_interior(v)) continue;
        const T* src = ws_.dx_edges.data() + (b * c_edges + ws_.c_edge[v - g.v_lo]) * c_width;
        for (std::size_t r = 0; r < s; ++r) {
          const auto u = static_cast<std::ptrdiff_t>(v * s + r) - static_cast<std::ptrdiff_t>(s_.padding);
          if (u >= 0 && u < static_cast<std::ptrdiff_t>(g_.t_in))
            std::copy_n(src + r * c_in, c_in, dx + (b * g_.t_in + static_cast<std::size_t>(u)) * c_in);
        }
      }
    });
  }

 private:
  static constexpr std::size_t row_block = 512;             // output frames per task (forward)
  static constexpr std::size_t channel_block = 128;         // output channels per task (d weight)
  static constexpr std::ptrdiff_t direct_max_window = 16;   // K*C_in up to which forward loops directly
  static constexpr std::size_t direct_chunk = 32;           // output channels held in registers
  static constexpr std::ptrdiff_t direct_rows_block = 4;    // frames held in registers
  static constexpr std::ptrdiff_t direct_frame_tile = 128;  // frames per cache tile in d weight
  static constexpr std::size_t window_block = 256;          // window positions per task (d weight, GEMM)
  static constexpr std::size_t super_row_block = 640;       // super rows of dx per task, at most (d input)

  // Sizes of one call. Outputs [t_lo, t_hi) read only real input; the others touch padding.
  struct geometry {
    std::size_t batch, t_in, t_out, t_lo, t_hi;
    std::size_t edges() const { return t_lo + (t_out - t_hi); }
  };

  static geometry make_geometry(const conv1d_shape& sh) {
    geometry g{sh.batch, sh.t_in, sh.t_out(), 0, 0};
    const std::size_t s = sh.stride, p = sh.padding, k = sh.kernel;
    g.t_lo = std::min(g.t_out, (p + s - 1) / s);
    // Last interior output t satisfies t*s - p + K <= T_in.
    g.t_hi = g.t_in + p >= k ? std::clamp((g.t_in + p - k) / s + 1, g.t_lo, g.t_out) : g.t_lo;
    return g;
  }

  std::ptrdiff_t window() const { return static_cast<std::ptrdiff_t>(s_.kernel * s_.c_in); }

  // A row of zeros long enough for any panel read with stride K (taps past K in d input's B).
  const T* zeros_row() {
    ws_.zeros.assign(cpu_kernels::gemm_tile<T>::cols * s_.kernel, T(0));
    return ws_.zeros.data();
  }

  // Start of the im2col row (receptive field, K*C_in scalars) of output t of item b: in x for
  // interior outputs, in the gathered edges otherwise (gather_edges must have run).
  const T* window(const T* x, std::size_t b, std::size_t t) const {
    const std::size_t win = s_.kernel * s_.c_in;
    if (t < g_.t_lo) return ws_.edges.data() + (b * g_.edges() + t) * win;
    if (t < g_.t_hi) return x + (b * g_.t_in + t * s_.stride - s_.padding) * s_.c_in;
    return ws_.edges.data() + (b * g_.edges() + g_.t_lo + t - g_.t_hi) * win;
  }

  // Super rows of d input (see backward_input): v covers dx rows v*s - p .. v*s - p + s - 1 and
  // reads dy rows v - q + 1 .. v. Per item, v runs over [v_lo, v_hi]; a super row is "interior"
  // for A if it reads only existing dy rows and for C if it writes only existing dx rows.
  struct input_geometry {
    std::size_t q, v_lo, v_hi, t_out, s, p, t_in;
    bool a_interior(std::size_t v) const { return v + 1 >= q && v < t_out; }
    bool c_interior(std::size_t v) const { return v * s >= p && v * s - p + s <= t_in; }
  };

  input_geometry input_geometry_of() const {
    const std::size_t s = s_.stride, p = s_.padding;
    const std::size_t q = (s_.kernel + s - 1) / s;
    // u = 0 and u = T_in - 1 lie in super rows floor(p / s) and floor((T_in - 1 + p) / s).
    return {q, p / s, (g_.t_in - 1 + p) / s, g_.t_out, s, p, g_.t_in};
  }

  // Copies the windows of the outputs that touch padding into edges `[B, edges, K*C_in]`.
  void gather_edges(const T* x) {
    const std::size_t win = s_.kernel * s_.c_in, c_in = s_.c_in;
    ws_.edges.assign(g_.batch * g_.edges() * win, T(0));
    for (std::size_t b = 0; b < g_.batch; ++b) {
      std::size_t e = 0;
      auto gather = [&](std::size_t t) {
        T* row = ws_.edges.data() + (b * g_.edges() + e++) * win;
        for (std::size_t k = 0; k < s_.kernel; ++k) {
          const auto u =
              static_cast<std::ptrdiff_t>(t * s_.stride + k) - static_cast<std::ptrdiff_t>(s_.padding);
          if (u >= 0 && u < static_cast<std::ptrdiff_t>(g_.t_in))
            std::copy_n(x + (b * g_.t_in + static_cast<std::size_t>(u)) * c_in, c_in, row + k * c_in);
        }
      };
      for (std::size_t t = 0; t < g_.t_lo; ++t) gather(t);
      for (std::size_t t = g_.t_hi; t < g_.t_out; ++t) gather(t);
    }
  }

  // Calls f(t0, n, rows, row_stride) for the runs of outputs [t0, t0 + n) within [r0, r1) of
  // batch item b that share one im2col view: edge rows from edges, interior rows straight from x.
  template <class F>
  void for_each_segment(const T* x, std::size_t b, std::size_t r0, std::size_t r1, F&& f) const {
    const std::size_t win = s_.kernel * s_.c_in;
    const T* edge = ws_.edges.data() + b * g_.edges() * win;
    if (r0 < g_.t_lo) {
      const std::size_t e = std::min(r1, g_.t_lo);
      f(r0, static_cast<std::ptrdiff_t>(e - r0), edge + r0 * win, static_cast<std::ptrdiff_t>(win));
    }
    const std::size_t a = std::max(r0, g_.t_lo), e = std::min(r1, g_.t_hi);
    if (a < e)
      f(a, static_cast<std::ptrdiff_t>(e - a), x + (b * g_.t_in + a * s_.stride - s_.padding) * s_.c_in,
        static_cast<std::ptrdiff_t>(s_.stride * s_.c_in));
    const std::size_t h = std::max(r0, g_.t_hi);
    if (h < r1)
      f(h, static_cast<std::ptrdiff_t>(r1 - h), edge + (g_.t_lo + h - g_.t_hi) * win,
        static_cast<std::ptrdiff_t>(win));
  }

  // The forward GEMM's B(j, o) = weight[o, c, k] for window position j = k * C_in + c, packed
  // straight from the weight (row j starts at weight + c * K + k, columns C_in * K apart).
  void pack_forward_weight(const T* w) {
    const std::size_t c_in = s_.c_in, kk = s_.kernel;
    ws_.wpack.use_bf16(cpu_kernels::convolution_bf16<T>());
    ws_.wpack.pack_rows(
        kk * c_in, s_.c_out, [&](std::size_t j) { return w + (j % c_in) * kk + j / c_in; },
        static_cast<std::ptrdiff_t>(c_in * kk));
  }

  // weight [C_out, C_in, K] -> wkc [K, C_in, C_pad] for the direct loop, so that one input
  // scalar scales a contiguous row of output channels; C_pad rounds C_out up to whole chunks of
  // direct_chunk channels (zero weights past C_out). bias (or zero) likewise into bias_pad.
  void reorder_weight(const T* w, const T* bias) {
    const std::size_t c_out = s_.c_out, c_in = s_.c_in, kk = s_.kernel, c_pad = padded_channels();
    ws_.wkc.assign(c_pad * c_in * kk, T(0));
    for (std::size_t o = 0; o < c_out; ++o)
      for (std::size_t c = 0; c < c_in; ++c)
        for (std::size_t k = 0; k < kk; ++k) {
          const std::size_t j = k * c_in + c;
          ws_.wkc[j * c_pad + o] = w[(o * c_in + c) * kk + k];
        }
    ws_.bias_pad.assign(c_pad, T(0));
    if (bias != nullptr) std::copy_n(bias, c_out, ws_.bias_pad.begin());
  }

  std::size_t padded_channels() const { return (s_.c_out + direct_chunk - 1) / direct_chunk * direct_chunk; }

  // Direct forward for narrow windows: y[t, :] = bias + sum_j rows[t, j] * wkc[j, :], the sum
  // over j in ascending order by explicit fused multiply-adds. Blocks of direct_rows_block frames
  // x direct_chunk channels stay in registers while j runs. Every frame and channel runs the same
  // instructions: a last partial block of frames is copied into a zero-padded block first, and
  // channels past C_out are computed on zero weights and not stored. So a frame's output depends
  // only on its window - not on where it sits in the buffer, on n, or on the segment or task.
  void direct_rows(const T* rows, std::ptrdiff_t stride, std::ptrdiff_t n, T* y) const {
    using V = xsimd::batch<T>;
    constexpr std::size_t lanes = V::size, nv = direct_chunk / lanes;
    static_assert(direct_chunk % lanes == 0, "direct_chunk must be a whole number of SIMD registers");
    constexpr std::ptrdiff_t rb = direct_rows_block;
    const std::size_t c_out = s_.c_out, c_pad = padded_channels(), win = static_cast<std::size_t>(window());
    const T* w = ws_.wkc.data();
    alignas(64) std::array<T, rb * direct_max_window> pad{};  // a partial block of frames, zero-padded
    alignas(64) std::array<T, direct_chunk> part;             // a partial chunk of channels
    for (std::ptrdiff_t t0 = 0; t0 < n; t0 += rb) {
      const std::ptrdiff_t nr = std::min(rb, n - t0);
      const T* src = rows + t0 * stride;
      std::ptrdiff_t src_stride = stride;
      if (nr < rb) {
        for (std::ptrdiff_t r = 0; r < nr; ++r)
          std::copy_n(rows + (t0 + r) * stride, win, pad.data() + static_cast<std::size_t>(r) * win);
        src = pad.data();
        src_stride = static_cast<std::ptrdiff_t>(win);
      }
      for (std::size_t o0 = 0; o0 < c_pad; o0 += direct_chunk) {
        std::array<std::array<V, nv>, rb> acc;
        for (std::size_t q = 0; q < nv; ++q) {
          const V b = V::load_aligned(ws_.bias_pad.data() + o0 + q * lanes);
          for (std::ptrdiff_t r = 0; r < rb; ++r) acc[r][q] = b;
        }
        for (std::size_t j = 0; j < win; ++j) {
          std::array<V, nv> wj;
          for (std::size_t q = 0; q < nv; ++q) wj[q] = V::load_aligned(w + j * c_pad + o0 + q * lanes);
#pragma GCC unroll 8
          for (std::ptrdiff_t r = 0; r < rb; ++r) {
            const V xr(src[r * src_stride + static_cast<std::ptrdiff_t>(j)]);
            for (std::size_t q = 0; q < nv; ++q) acc[r][q] = xsimd::fma(xr, wj[q], acc[r][q]);
          }
        }
        // Constant indices into acc (unrolled over r), so that it stays in registers.
        const std::size_t nc = std::min(direct_chunk, c_out - o0);
#pragma GCC unroll 8
        for (std::ptrdiff_t r = 0; r < rb; ++r) {
          if (r >= nr) break;
          T* yr = y + static_cast<std::size_t>(t0 + r) * c_out + o0;
          if (nc == direct_chunk) {
            for (std::size_t q = 0; q < nv; ++q) acc[r][q].store_unaligned(yr + q * lanes);
          } else {
            for (std::size_t q = 0; q < nv; ++q) acc[r][q].store_aligned(part.data() + q * lanes);
            std::copy_n(part.data(), nc, yr);
          }
        }
      }
    }
  }

  // Narrow windows: d weight += dy^T im2col(x), d bias += sum dy. Each task owns a block of output
  // channels and sums over batch items and frames in a fixed order, so the result does not depend
  // on threads.
  void parameter_gradients(const T* x, const T* dy, T* grad, T* d_bias) {
    const std::size_t c_out = s_.c_out, c_in = s_.c_in, kk = s_.kernel;
    const std::ptrdiff_t win = window();
    ws_.dwkc.resize(c_out * kk * c_in);
    parallel_for(0, (c_out + channel_block - 1) / channel_block, [&](std::size_t blk) {
      const std::size_t o0 = blk * channel_block;
      const auto n_o = static_cast<std::ptrdiff_t>(std::min(channel_block, c_out - o0));
      auto dw = cpu_kernels::matrix_map(ws_.dwkc.data() + o0 * kk * c_in, n_o, win);
      dw.setZero();
      for (std::size_t b = 0; b < g_.batch; ++b) {
        const T* dyb = dy + b * g_.t_out * c_out;
        for_each_segment(x, b, 0, g_.t_out,
                         [&](std::size_t t0, std::ptrdiff_t n, const T* rows, std::ptrdiff_t stride) {
                           direct_weight_rows(dyb + t0 * c_out, n, rows, stride, o0, n_o);
                         });
        if (d_bias != nullptr) {
          auto db = cpu_kernels::row_vector_map(d_bias + o0, n_o);
          for (std::size_t t = 0; t < g_.t_out; ++t)
            db += cpu_kernels::row_vector_map(dyb + t * c_out + o0, n_o);
        }
      }
      for (std::size_t o = o0; o < o0 + static_cast<std::size_t>(n_o); ++o)
        for (std::size_t c = 0; c < c_in; ++c)
          for (std::size_t k = 0; k < kk; ++k)
            grad[(o * c_in + c) * kk + k] += ws_.dwkc[o * kk * c_in + k * c_in + c];
    });
  }

  // Wide windows: dW^T[j, o] = sum over items and frames t of rows[t, j] dy[t, o], one GEMM per
  // item and segment of frames with dy packed once and shared by the tasks, each task owning a
  // block of window positions j and summing items and segments in a fixed order
  // (deterministic for any thread count). d bias: blocks of channels, frames in order.
  void parameter_gradients_gemm(const T* x, const T* dy, T* grad, T* d_bias) {
    const std::size_t c_out = s_.c_out, c_in = s_.c_in, kk = s_.kernel;
    const auto win = static_cast<std::size_t>(window());
    const std::size_t frames = g_.batch * g_.t_out;
    ws_.dwt.resize(win * c_out);
    ws_.frames.resize(frames);
    for (std::size_t b = 0; b < g_.batch; ++b)
      for (std::size_t t = 0; t < g_.t_out; ++t) ws_.frames[b * g_.t_out + t] = window(x, b, t);
    ws_.dypack.use_bf16(cpu_kernels::convolution_bf16<T>());
    ws_.dypack.pack(dy, static_cast<std::ptrdiff_t>(c_out), 1, frames, c_out);
    const std::size_t blocks = (win + window_block - 1) / window_block;
    parallel_for(0, blocks, [&](std::size_t blk) {
      const std::size_t j0 = blk * window_block, nj = std::min(window_block, win - j0);
      alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
      cpu_kernels::gemm_cols<T>(
          nj, [&](std::size_t k) { return ws_.frames[k] + j0; }, ws_.dypack, ws_.dwt.data() + j0 * c_out,
          static_cast<std::ptrdiff_t>(c_out), false, work.data());
    });
    parallel_for(0, (c_out + channel_block - 1) / channel_block, [&](std::size_t blk) {
      const std::size_t o0 = blk * channel_block, o1 = std::min(c_out, o0 + channel_block);
      const auto n_o = static_cast<std::ptrdiff_t>(o1 - o0);
      if (d_bias != nullptr) {
        auto db = cpu_kernels::row_vector_map(d_bias + o0, n_o);
        for (std::size_t r = 0; r < g_.batch * g_.t_out; ++r)
          db += cpu_kernels::row_vector_map(dy + r * c_out + o0, n_o);
      }
      // grad[o, c, k] += dwt[k, c, o], 16 channels o at a time: each line of dwt is read once and
      // the 16 rows of grad being written stay in cache.
      for (std::size_t ob = o0; ob < o1; ob += 16) {
        const std::size_t no = std::min<std::size_t>(16, o1 - ob);
        for (std::size_t c = 0; c < c_in; ++c)
          for (std::size_t k = 0; k < kk; ++k) {
            const T* src = ws_.dwt.data() + (k * c_in + c) * c_out + ob;
            T* dst = grad + (ob * c_in + c) * kk + k;
            for (std::size_t i = 0; i < no; ++i) dst[i * c_in * kk] += src[i];
          }
      }
    });
  }

  // Narrow windows: dwkc[o, j] += sum_t dy[t, o] * rows[t, j] for o in [o0, o0 + n_o). Blocks of
  // direct_chunk channels x J window positions are accumulated in registers over t (ascending, by
  // explicit fused multiply-adds) per tile of frames. A last partial chunk of channels runs the
  // same code on a zero-padded copy of its dy columns, so a channel's sums do not depend on C_out.
  void direct_weight_rows(const T* dy, std::ptrdiff_t n, const T* rows, std::ptrdiff_t stride, std::size_t o0,
                          std::ptrdiff_t n_o) {
    const auto win = static_cast<std::size_t>(window());
    const auto c_out = static_cast<std::ptrdiff_t>(s_.c_out);
    alignas(64) std::array<T, direct_frame_tile * direct_chunk> dpad;  // dy columns of a partial chunk
    // Tiles of frames, so that the tile of dy stays in cache across the passes over j.
    for (std::ptrdiff_t t0 = 0; t0 < n; t0 += direct_frame_tile) {
      const std::ptrdiff_t nt = std::min(direct_frame_tile, n - t0);
      const T* r = rows + t0 * stride;
      for (std::size_t i0 = 0; i0 < static_cast<std::size_t>(n_o); i0 += direct_chunk) {
        const std::size_t nc = std::min(direct_chunk, static_cast<std::size_t>(n_o) - i0);
        const T* d = dy + t0 * c_out + static_cast<std::ptrdiff_t>(o0 + i0);
        std::ptrdiff_t d_stride = c_out;
        if (nc < direct_chunk) {
          for (std::ptrdiff_t t = 0; t < nt; ++t) {
            T* dst = dpad.data() + static_cast<std::size_t>(t) * direct_chunk;
            std::copy_n(d + t * c_out, nc, dst);
            std::fill(dst + nc, dst + direct_chunk, T(0));
          }
          d = dpad.data();
          d_stride = static_cast<std::ptrdiff_t>(direct_chunk);
        }
        T* dw = ws_.dwkc.data() + (o0 + i0) * win;
        std::size_t j0 = 0;
        for (; j0 + 8 <= win; j0 += 8) direct_weight_block<8>(d, d_stride, nt, r, stride, j0, nc, dw);
        for (; j0 + 4 <= win; j0 += 4) direct_weight_block<4>(d, d_stride, nt, r, stride, j0, nc, dw);
        for (; j0 + 2 <= win; j0 += 2) direct_weight_block<2>(d, d_stride, nt, r, stride, j0, nc, dw);
        for (; j0 < win; ++j0) direct_weight_block<1>(d, d_stride, nt, r, stride, j0, nc, dw);
      }
    }
  }

  // dw[i * win + j0 + j] += sum_{t < n} dy[t * d_stride + i] * rows[t * stride + j0 + j] for
  // j < J, i < nc (dy holds direct_chunk readable columns).
  template <std::size_t J>
  void direct_weight_block(const T* dy, std::ptrdiff_t d_stride, std::ptrdiff_t n, const T* rows,
                           std::ptrdiff_t stride, std::size_t j0, std::size_t nc, T* dw) const {
    using V = xsimd::batch<T>;
    constexpr std::size_t lanes = V::size, nv = direct_chunk / lanes;
    const auto win = static_cast<std::size_t>(window());
    std::array<std::array<V, nv>, J> acc;
    for (auto& a : acc) a.fill(V(T(0)));
    for (std::ptrdiff_t t = 0; t < n; ++t) {
      std::array<V, nv> d;
      for (std::size_t q = 0; q < nv; ++q)
        d[q] = V::load_unaligned(dy + t * d_stride + static_cast<std::ptrdiff_t>(q * lanes));
      const T* xr = rows + t * stride + static_cast<std::ptrdiff_t>(j0);
      for (std::size_t j = 0; j < J; ++j) {
        const V xj(xr[j]);
        for (std::size_t q = 0; q < nv; ++q) acc[j][q] = xsimd::fma(xj, d[q], acc[j][q]);
      }
    }
    alignas(64) std::array<T, direct_chunk> sums;
    for (std::size_t j = 0; j < J; ++j) {
      for (std::size_t q = 0; q < nv; ++q) acc[j][q].store_aligned(sums.data() + q * lanes);
      for (std::size_t i = 0; i < nc; ++i) dw[i * win + j0 + j] += sums[i];
    }
  }

  const conv1d_shape& s_;
  conv1d_workspace<cpu, T>& ws_;
  geometry g_;
};

}  // namespace cpu_detail

/// cpu conv1d_forward: strided im2col GEMM (or the direct loop for K*C_in <= 16), bias added per
/// row block; tasks over (batch item, block of 512 frames).
template <class T>
void run(cpu, const conv1d_forward_args<T>& a, conv1d_workspace<cpu, T>& ws) {
  cpu_detail::conv1d_kernel<T>(a.shape, ws).forward(a.x, a.weight, a.bias, a.y);
}

/// cpu conv1d_backward_params: direct register-blocked loop (K*C_in <= 16) or per-segment GEMMs
/// into a transposed staging buffer; tasks own channel or window blocks (thread-invariant).
template <class T>
void run(cpu, const conv1d_backward_params_args<T>& a, conv1d_workspace<cpu, T>& ws) {
  cpu_detail::conv1d_kernel<T>(a.shape, ws).backward_params(a.x, a.dy, a.d_weight, a.d_bias);
}

/// cpu conv1d_backward_input: K GEMMs dy W_k into strided views of dx; tasks own blocks of dx rows.
template <class T>
void run(cpu, const conv1d_backward_input_args<T>& a, conv1d_workspace<cpu, T>& ws) {
  cpu_detail::conv1d_kernel<T>(a.shape, ws).backward_input(a.dy, a.weight, a.dx);
}

}  // namespace cpc::ops
