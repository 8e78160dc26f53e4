#pragma once
/// Shared engine of `cpc::gru` and `cpc::lstm` (internal; include gru.hpp or lstm.hpp instead).
///
/// A stack of `num_layers` recurrent layers, batch-first `[batch, time, channels]`, with
/// PyTorch's parameter names and layouts (torch.nn.GRU / torch.nn.LSTM). The cell (GRU or LSTM)
/// is a policy type that supplies the gate count and the per-element maths of one time step; the
/// engine does the GEMMs, the time loop, the workspaces and back-propagation through time.
///
/// Per layer, forward:
///   1. all input projections at once, `[B*T, in] x [in, G*H]` (one GEMM, rows split across tasks);
///   2. the recurrence, one task per fixed batch slice, each running its own time loop with the
///      recurrent weights packed once per call (`[slice, H] x [H, G*H]` per step).
/// Backward mirrors it: per-step gate gradients are stored for all t, then dW_ih, dW_hh, the
/// biases and dx come from single GEMMs after the time loop.
///
/// Determinism: every GEMM here runs Eigen's GEBP kernel on operands whose column count is padded
/// to a multiple of its register block, so each output row (one batch item, one time step) is
/// computed by the same instruction sequence whatever the batch size, the chunking of the sequence
/// or the thread count. Forward results are therefore bit-identical for a batch item alone or in a
/// batch, for one pass or a stream of chunks, and for any number of threads.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <xsimd/xsimd.hpp>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"
#include "cpc/layers/init.hpp"

namespace cpc {

/// Sizes of a recurrent stack (`cpc::gru`, `cpc::lstm`); the names follow torch.nn.GRU / LSTM.
/// `input_size` = channels of x, `hidden_size` = H = channels of y, `num_layers` stacked layers
/// (layer k > 0 reads layer k-1's outputs), `bias = false` drops bias_ih / bias_hh.
struct recurrent_options {
  std::size_t input_size = 0;
  std::size_t hidden_size = 0;
  std::size_t num_layers = 1;
  bool bias = true;
};

namespace detail {

using index_t = std::ptrdiff_t;

template <class T>
using aligned_vector = std::vector<T, Eigen::aligned_allocator<T>>;

inline std::size_t round_up(std::size_t n, std::size_t m) {
  return (n + m - 1) / m * m;
}

/// Grows `v` to at least `n` elements (never shrinks, so steady-state calls do not allocate).
template <class V>
void ensure_size(V& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

/// A matrix A `[m, k]` packed once into the panel layout of Eigen's GEBP kernel, then multiplied
/// many times: `C += A B` with B `[k, n]` and C `[m, n]` both column-major (i.e. B's columns and
/// C's columns are the rows of row-major `[n, k]` / `[n, m]` buffers). Avoids re-packing the
/// weights at every time step and allocates nothing per call. Uses Eigen 3.4's internal GEBP API
/// (gemm_pack_lhs / gemm_pack_rhs / gebp_kernel), the same calls Eigen's own products make.
template <class T>
class packed_matrix {
  using traits = Eigen::internal::gebp_traits<T, T>;
  static constexpr std::size_t align_elems = 64;  // keeps every packed panel 64-byte aligned

 public:
  /// GEBP's register block of columns; column counts that are multiples of it keep every column
  /// on the same code path.
  static constexpr std::size_t column_block = static_cast<std::size_t>(traits::nr);

  /// Packs A `[m, k]` stored with leading dimension `lda` in `Order` (Eigen::RowMajor: A(i, p) at
  /// a[i * lda + p]; Eigen::ColMajor: at a[p * lda + i]).
  template <int Order>
  void pack(const T* a, index_t lda, index_t m, index_t k) {
    m_ = m;
    k_ = k;
    // Eigen's depth blocking depends on k alone (not on m or n), so it is the same for every call.
    index_t kc = k, mc = m, nc = traits::nr;
    Eigen::internal::computeProductBlockingSizes<T, T, 1, index_t>(kc, mc, nc, index_t(1));
    kc_ = std::max<index_t>(kc, 1);
    offsets_.clear();
    std::size_t total = 0;
    for (index_t k0 = 0; k0 < k; k0 += kc_) {
      offsets_.push_back(total);
      total += round_up(static_cast<std::size_t>(m * std::min(kc_, k - k0)), align_elems);
    }
    ensure_size(data_, total);
    using mapper = Eigen::internal::const_blas_data_mapper<T, index_t, Order>;
    Eigen::internal::gemm_pack_lhs<T, index_t, mapper, traits::mr, traits::LhsProgress,
                                   typename traits::LhsPacket4Packing, Order>
        pack_lhs;
    std::size_t p = 0;
    for (index_t k0 = 0; k0 < k; k0 += kc_, ++p) {
      const T* a0 = Order == Eigen::RowMajor ? a + k0 : a + k0 * lda;
      pack_lhs(data_.data() + offsets_[p], mapper(a0, lda), std::min(kc_, k - k0), m);
    }
  }

  /// Scalars of `work` that `multiply_add` needs for `n` columns.
  std::size_t work_size(index_t n) const { return static_cast<std::size_t>(kc_ * std::max<index_t>(n, 1)); }

  /// C += A B: B column-major `[k, n]` (column j at b + j * ldb), C column-major `[m, n]` (column j
  /// at c + j * ldc). `work` holds `work_size(n)` aligned scalars. Pass n a multiple of column_block for
  /// results that do not depend on a column's position (see the file comment).
  void multiply_add(const T* b, index_t ldb, index_t n, T* c, index_t ldc, T* work) const {
    if (n == 0 || m_ == 0) return;
    using rhs_mapper = Eigen::internal::const_blas_data_mapper<T, index_t, Eigen::ColMajor>;
    using res_mapper = Eigen::internal::blas_data_mapper<T, index_t, Eigen::ColMajor, Eigen::Unaligned, 1>;
    Eigen::internal::gemm_pack_rhs<T, index_t, rhs_mapper, traits::nr, Eigen::ColMajor> pack_rhs;
    Eigen::internal::gebp_kernel<T, T, index_t, res_mapper, traits::mr, traits::nr, false, false> gebp;
    std::size_t p = 0;
    for (index_t k0 = 0; k0 < k_; k0 += kc_, ++p) {
      const index_t kp = std::min(kc_, k_ - k0);
      pack_rhs(work, rhs_mapper(b + k0, ldb), kp, n);
      gebp(res_mapper(c, ldc), data_.data() + offsets_[p], work, m_, kp, n, T(1));
    }
  }

  index_t rows() const { return m_; }

 private:
  index_t m_ = 0, k_ = 0, kc_ = 1;
  std::vector<std::size_t> offsets_;
  aligned_vector<T> data_;
};

// ---- element-wise maths of one time step -------------------------------------------------------

template <class T>
using simd = xsimd::batch<T>;

/// Loads / stores whole SIMD registers.
template <class T>
struct full_lanes {
  simd<T> load(const T* p) const { return simd<T>::load_unaligned(p); }
  void store(T* p, const simd<T>& v) const { v.store_unaligned(p); }
};

/// Loads / stores the first `count` lanes of a register (the tail of a row), zero-padding loads.
/// The tail goes through the same SIMD code as the body, so every element of a row is computed
/// identically whatever its position.
template <class T>
struct partial_lanes {
  std::size_t count;
  simd<T> load(const T* p) const {
    alignas(64) std::array<T, simd<T>::size> buf{};
    std::copy_n(p, count, buf.data());
    return simd<T>::load_aligned(buf.data());
  }
  void store(T* p, const simd<T>& v) const {
    alignas(64) std::array<T, simd<T>::size> buf;
    v.store_aligned(buf.data());
    std::copy_n(buf.data(), count, p);
  }
};

/// Calls `kernel(j, lanes)` for j = 0, W, 2W, ... < n, where `lanes` loads/stores W = SIMD width
/// elements (fewer for the tail).
template <class T, class Kernel>
void for_each_lane(std::size_t n, Kernel&& kernel) {
  constexpr std::size_t w = simd<T>::size;
  std::size_t j = 0;
  for (; j + w <= n; j += w) kernel(j, full_lanes<T>{});
  if (j < n) kernel(j, partial_lanes<T>{n - j});
}

// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the `_mm512_undefined_*`
// pass-through operand of xsimd's rounding in exp / tanh): a false positive, silenced here only.
// The cells' step functions are flattened so that xsimd's maths is inlined into this region
// (which also makes the per-step loops free of calls).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#define CPC_RNN_FLATTEN [[gnu::flatten]]
#else
#define CPC_RNN_FLATTEN
#endif

/// Applies a scalar function to every lane (the double path: tests and gradient checks, where
/// libm's accuracy matters more than speed).
template <class T, class F>
simd<T> per_lane(const simd<T>& x, F&& f) {
  alignas(64) std::array<T, simd<T>::size> buf;
  x.store_aligned(buf.data());
  for (auto& v : buf) v = f(v);
  return simd<T>::load_aligned(buf.data());
}

/// Logistic sigmoid 1 / (1 + exp(-x)), lane-wise.
template <class T>
simd<T> sigmoid(const simd<T>& x) {
  if constexpr (std::is_same_v<T, float>)
    return simd<T>(T(1)) / (simd<T>(T(1)) + xsimd::exp(-x));
  else
    return per_lane<T>(x, [](T v) { return T(1) / (T(1) + std::exp(-v)); });
}

/// Hyperbolic tangent, lane-wise.
template <class T>
simd<T> tanh(const simd<T>& x) {
  if constexpr (std::is_same_v<T, float>)
    return xsimd::tanh(x);
  else
    return per_lane<T>(x, [](T v) { return std::tanh(v); });
}

/// Pointers of one batch item at one time step, forward. Rows of H scalars unless noted.
template <class T>
struct step_forward {
  T* gates;         ///< [G*H] in: x W_ih^T + b_ih; out: the activated gates
  const T* rec;     ///< [G*H] h_prev W_hh^T + b_hh
  const T* h_prev;  ///< h_{t-1}
  const T* c_prev;  ///< c_{t-1} (LSTM only)
  T* h;             ///< out: h_t
  T* extra;         ///< out: what backward needs besides the gates (GRU: W_hn h + b_hn; LSTM: c_t)
};

/// Pointers of one batch item at one time step, backward.
template <class T>
struct step_backward {
  const T* gates;   ///< [G*H] activated gates from forward
  const T* extra;   ///< GRU: W_hn h_prev + b_hn; LSTM: c_t
  const T* h_prev;  ///< h_{t-1}
  const T* c_prev;  ///< c_{t-1} (LSTM only)
  const T* dy;      ///< dL/dh_t from the layer's outputs
  T* dh;            ///< in: dL/dh_t through the recurrence; out: dL/dh_{t-1} except the W_hh path
  T* dc;            ///< LSTM: in dL/dc_t through the recurrence, out dL/dc_{t-1}
  T* dgi;           ///< [G*H] out: dL/d(x W_ih^T + b_ih)
  T* dgh;           ///< [G*H] out: dL/d(h W_hh^T + b_hh)
};

/// GRU cell, torch.nn.GRU: r = s(Wir x + bir + Whr h + bhr), z = s(Wiz x + biz + Whz h + bhz),
/// n = tanh(Win x + bin + r * (Whn h + bhn)), h' = (1 - z) * n + z * h; gate order r, z, n.
struct gru_cell {
  static constexpr std::size_t gates = 3;
  static constexpr bool has_cell_state = false;

  template <class T>
  CPC_RNN_FLATTEN static void forward(std::size_t H, const step_forward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      const auto r = sigmoid<T>(io.load(s.gates + j) + io.load(s.rec + j));
      const auto z = sigmoid<T>(io.load(s.gates + H + j) + io.load(s.rec + H + j));
      const auto hn = io.load(s.rec + 2 * H + j);
      const auto n = detail::tanh<T>(io.load(s.gates + 2 * H + j) + r * hn);
      const auto hp = io.load(s.h_prev + j);
      io.store(s.gates + j, r);
      io.store(s.gates + H + j, z);
      io.store(s.gates + 2 * H + j, n);
      io.store(s.extra + j, hn);
      io.store(s.h + j, n + z * (hp - n));
    });
  }

  template <class T>
  CPC_RNN_FLATTEN static void backward(std::size_t H, const step_backward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      using V = simd<T>;
      const V one(T(1));
      const auto r = io.load(s.gates + j);
      const auto z = io.load(s.gates + H + j);
      const auto n = io.load(s.gates + 2 * H + j);
      const auto dh = io.load(s.dy + j) + io.load(s.dh + j);
      const auto dan = dh * (one - z) * (one - n * n);
      const auto daz = dh * (io.load(s.h_prev + j) - n) * z * (one - z);
      const auto dar = dan * io.load(s.extra + j) * r * (one - r);
      io.store(s.dh + j, dh * z);
      io.store(s.dgi + j, dar);
      io.store(s.dgi + H + j, daz);
      io.store(s.dgi + 2 * H + j, dan);
      io.store(s.dgh + j, dar);
      io.store(s.dgh + H + j, daz);
      io.store(s.dgh + 2 * H + j, dan * r);
    });
  }
};

/// LSTM cell, torch.nn.LSTM: i, f, o = s(W_i* x + b_i* + W_h* h + b_h*), g = tanh(...),
/// c' = f * c + i * g, h' = o * tanh(c'); gate order i, f, g, o.
struct lstm_cell {
  static constexpr std::size_t gates = 4;
  static constexpr bool has_cell_state = true;

  template <class T>
  CPC_RNN_FLATTEN static void forward(std::size_t H, const step_forward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      const auto i = sigmoid<T>(io.load(s.gates + j) + io.load(s.rec + j));
      const auto f = sigmoid<T>(io.load(s.gates + H + j) + io.load(s.rec + H + j));
      const auto g = detail::tanh<T>(io.load(s.gates + 2 * H + j) + io.load(s.rec + 2 * H + j));
      const auto o = sigmoid<T>(io.load(s.gates + 3 * H + j) + io.load(s.rec + 3 * H + j));
      const auto c = f * io.load(s.c_prev + j) + i * g;
      io.store(s.gates + j, i);
      io.store(s.gates + H + j, f);
      io.store(s.gates + 2 * H + j, g);
      io.store(s.gates + 3 * H + j, o);
      io.store(s.extra + j, c);
      io.store(s.h + j, o * detail::tanh<T>(c));
    });
  }

  template <class T>
  CPC_RNN_FLATTEN static void backward(std::size_t H, const step_backward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      using V = simd<T>;
      const V one(T(1));
      const auto i = io.load(s.gates + j);
      const auto f = io.load(s.gates + H + j);
      const auto g = io.load(s.gates + 2 * H + j);
      const auto o = io.load(s.gates + 3 * H + j);
      const auto tc = detail::tanh<T>(io.load(s.extra + j));
      const auto dh = io.load(s.dy + j) + io.load(s.dh + j);
      const auto dc = io.load(s.dc + j) + dh * o * (one - tc * tc);
      const auto dai = dc * g * i * (one - i);
      const auto daf = dc * io.load(s.c_prev + j) * f * (one - f);
      const auto dag = dc * i * (one - g * g);
      const auto dao = dh * tc * o * (one - o);
      io.store(s.dc + j, dc * f);
      io.store(s.dh + j, V(T(0)));
      const std::array<V, 4> da{dai, daf, dag, dao};
      for (std::size_t q = 0; q < 4; ++q) {
        io.store(s.dgi + q * H + j, da[q]);
        io.store(s.dgh + q * H + j, da[q]);
      }
    });
  }
};

#undef CPC_RNN_FLATTEN
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// The engine behind `cpc::gru` / `cpc::lstm`: `num_layers` layers of `Cell`, batch-first.
/// See the file comment for the algorithm and its determinism guarantee.
template <class T, class Cell>
class recurrent_stack {
  static constexpr std::size_t G = Cell::gates;

 public:
  recurrent_stack(const recurrent_options& opt, rng& gen, std::string name)
      : opt_(opt), name_(std::move(name)) {
    if (opt.input_size == 0 || opt.hidden_size == 0 || opt.num_layers == 0)
      throw config_error(name_ + ": expected input_size > 0, hidden_size > 0 and num_layers > 0, got " +
                         std::to_string(opt.input_size) + ", " + std::to_string(opt.hidden_size) + ", " +
                         std::to_string(opt.num_layers));
    const std::size_t H = opt.hidden_size;
    const double bound = 1.0 / std::sqrt(static_cast<double>(H));
    layers_.resize(opt.num_layers);
    for (std::size_t l = 0; l < opt.num_layers; ++l) {
      auto& p = layers_[l];
      p.w_ih = parameter<T>({G * H, l == 0 ? opt.input_size : H});
      p.w_hh = parameter<T>({G * H, H});
      init_uniform(p.w_ih, bound, gen);
      init_uniform(p.w_hh, bound, gen);
      if (opt.bias) {
        p.b_ih = parameter<T>({G * H});
        p.b_hh = parameter<T>({G * H});
        init_uniform(p.b_ih, bound, gen);
        init_uniform(p.b_hh, bound, gen);
      }
    }
  }

  const recurrent_options& config() const { return opt_; }

  /// Runs the stack. x `[B, T, input_size]` -> y `[B, T, H]`; h0 / c0 `[L, B, H]` or null (zeros);
  /// h_n / c_n (when not null) resized to `[L, B, H]`. The states may alias h0 / c0.
  void forward(const tensor3<T>& x, tensor3<T>& y, const tensor3<T>* h0, const tensor3<T>* c0,
               tensor3<T>* h_n, tensor3<T>* c_n) {
    check_shape(name_ + " forward input", x, {any, any, static_cast<std::ptrdiff_t>(opt_.input_size)});
    const std::size_t B = x.shape()[0], T_ = x.shape()[1], H = opt_.hidden_size, L = opt_.num_layers;
    const std::array<std::size_t, 3> state_shape{L, B, H};
    const auto sL = static_cast<std::ptrdiff_t>(L), sB = static_cast<std::ptrdiff_t>(B),
               sH = static_cast<std::ptrdiff_t>(H);
    if (h0) check_shape(name_ + " forward initial hidden state", *h0, {sL, sB, sH});
    if (c0) check_shape(name_ + " forward initial cell state", *c0, {sL, sB, sH});
    // Copy the initial states first: h_n / c_n may alias them.
    ensure_shape(h0_, state_shape);
    if (h0)
      std::copy(h0->begin(), h0->end(), h0_.begin());
    else
      h0_.fill(T(0));
    if constexpr (Cell::has_cell_state) {
      ensure_shape(c0_, state_shape);
      if (c0)
        std::copy(c0->begin(), c0->end(), c0_.begin());
      else
        c0_.fill(T(0));
    }
    has_h0_ = h0 != nullptr;
    batch_ = B;
    time_ = T_;
    const std::array<std::size_t, 3> seq_shape{B, T_, H}, gate_shape{B, T_, G * H};
    work_.resize(L);
    for (auto& w : work_) {
      ensure_shape(w.gates, gate_shape);
      ensure_shape(w.extra, seq_shape);
      ensure_shape(w.h, seq_shape);
    }
    for (std::size_t l = 0; l < L; ++l) forward_layer(l, l == 0 ? x.data() : work_[l - 1].h.data());
    ensure_shape(y, seq_shape);
    std::copy(work_[L - 1].h.begin(), work_[L - 1].h.end(), y.begin());
    if (h_n) {
      ensure_shape(*h_n, state_shape);
      for (std::size_t l = 0; l < L; ++l)
        for (std::size_t b = 0; b < B; ++b) {
          T* dst = h_n->data() + (l * B + b) * H;
          if (T_ == 0)
            std::copy_n(h0_.data() + (l * B + b) * H, H, dst);
          else
            std::copy_n(work_[l].h.data() + (b * T_ + T_ - 1) * H, H, dst);
        }
    }
    if constexpr (Cell::has_cell_state) {
      if (c_n) {
        ensure_shape(*c_n, state_shape);
        for (std::size_t l = 0; l < L; ++l)
          for (std::size_t b = 0; b < B; ++b) {
            T* dst = c_n->data() + (l * B + b) * H;
            if (T_ == 0)
              std::copy_n(c0_.data() + (l * B + b) * H, H, dst);
            else
              std::copy_n(work_[l].extra.data() + (b * T_ + T_ - 1) * H, H, dst);
          }
      }
    }
  }

  /// Back-propagation through time over the sequence of the latest forward call.
  void backward(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    const std::size_t H = opt_.hidden_size, L = opt_.num_layers, GH = G * H;
    const auto sB = static_cast<std::ptrdiff_t>(batch_), sT = static_cast<std::ptrdiff_t>(time_),
               sH = static_cast<std::ptrdiff_t>(H);
    if (work_.empty()) throw config_error(name_ + " backward: expected a forward call first");
    check_shape(name_ + " backward input", x, {sB, sT, static_cast<std::ptrdiff_t>(opt_.input_size)});
    check_shape(name_ + " backward output", y, {sB, sT, sH});
    check_shape(name_ + " backward output gradient", dy, {sB, sT, sH});
    const std::size_t B = batch_, T_ = time_, rows = B * T_;
    ensure_size(dgi_, rows * GH);
    ensure_size(dgh_, rows * GH);
    ensure_size(dgh0_, B * GH);
    ensure_size(dh_a_, rows * H);
    ensure_size(dh_b_, rows * H);
    if (dx) ensure_shape(*dx, x.shape());
    if (rows == 0) return;      // an empty sequence has no gradient
    const T* dout = dy.data();  // gradient w.r.t. the current layer's outputs
    for (std::size_t li = L; li-- > 0;) {
      auto& p = layers_[li];
      const std::size_t in = li == 0 ? opt_.input_size : H;
      const T* xin = li == 0 ? x.data() : work_[li - 1].h.data();
      backward_recurrence(li, dout);
      // Parameter gradients: one GEMM each over all (b, t); tasks own disjoint gate-row blocks.
      const auto srows = static_cast<index_t>(rows), sGH = static_cast<index_t>(GH),
                 sin = static_cast<index_t>(in);
      const std::size_t blocks = (GH + grad_block - 1) / grad_block;
      const T* h_seq = work_[li].h.data();
      const T* h0 = h0_.data() + li * B * H;
      parallel_for(0, blocks, [&](std::size_t blk) {
        const std::size_t o0 = blk * grad_block;
        const auto n = static_cast<index_t>(std::min(grad_block, GH - o0));
        const auto dgi = cpu_kernels::strided_map(dgi_.data() + o0, srows, n, sGH);
        const auto dgh = cpu_kernels::strided_map(dgh_.data() + o0, srows, n, sGH);
        const auto dgh0 = cpu_kernels::strided_map(dgh0_.data() + o0, static_cast<index_t>(B), n, sGH);
        cpu_kernels::matrix_map(p.w_ih.grad.data() + o0 * in, n, sin).noalias() +=
            dgi.transpose() * cpu_kernels::matrix_map(xin, srows, sin);
        auto dw_hh = cpu_kernels::matrix_map(p.w_hh.grad.data() + o0 * H, n, sH);
        dw_hh.noalias() += dgh.transpose() * cpu_kernels::matrix_map(h_seq, srows, sH);
        if (has_h0_)
          dw_hh.noalias() += dgh0.transpose() * cpu_kernels::matrix_map(h0, static_cast<index_t>(B), sH);
        if (opt_.bias) {
          cpu_kernels::row_vector_map(p.b_ih.grad.data() + o0, n) += dgi.colwise().sum();
          cpu_kernels::row_vector_map(p.b_hh.grad.data() + o0, n) +=
              dgh.colwise().sum() + dgh0.colwise().sum();
        }
      });
      // Gradient w.r.t. this layer's input: dX = dG_i W_ih, row blocks.
      if (li == 0 && !dx) break;
      T* dxin = li == 0 ? dx->data() : (dout == dh_a_.data() ? dh_b_.data() : dh_a_.data());
      const auto w = cpu_kernels::matrix_map(p.w_ih.value.data(), sGH, sin);
      parallel_for(0, (rows + row_block - 1) / row_block, [&](std::size_t blk) {
        const std::size_t r0 = blk * row_block;
        const auto n = static_cast<index_t>(std::min(row_block, rows - r0));
        cpu_kernels::matrix_map(dxin + r0 * in, n, sin).noalias() =
            cpu_kernels::matrix_map(dgi_.data() + r0 * GH, n, sGH) * w;
      });
      dout = dxin;
    }
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const std::string k = std::to_string(l);
      f(join_name(prefix, "weight_ih_l" + k), layers_[l].w_ih);
      f(join_name(prefix, "weight_hh_l" + k), layers_[l].w_hh);
      if (opt_.bias) {
        f(join_name(prefix, "bias_ih_l" + k), layers_[l].b_ih);
        f(join_name(prefix, "bias_hh_l" + k), layers_[l].b_hh);
      }
    }
  }

  parameter<T>& weight_ih(std::size_t l) { return layer(l).w_ih; }
  parameter<T>& weight_hh(std::size_t l) { return layer(l).w_hh; }
  parameter<T>& bias_ih(std::size_t l) { return layer(l).b_ih; }
  parameter<T>& bias_hh(std::size_t l) { return layer(l).b_hh; }

 private:
  static constexpr std::size_t proj_block = 64;  // rows per input-projection GEMM
  static constexpr std::size_t grad_block = 64;  // gate rows per task in the weight gradients
  static constexpr std::size_t row_block = 256;  // rows per task in dx
  static constexpr std::size_t max_slice = 16;   // batch items per recurrence task, at most
  static constexpr std::size_t cb = packed_matrix<T>::column_block;  // GEBP column block
  static_assert(proj_block % cb == 0, "cpc: proj_block must be a multiple of GEBP's column block");

  struct layer_params {
    parameter<T> w_ih, w_hh, b_ih, b_hh;
  };
  struct layer_work {
    tensor3<T> gates;  // [B, T, G*H] activated gates
    tensor3<T> extra;  // [B, T, H] GRU: W_hn h + b_hn; LSTM: c_t
    tensor3<T> h;      // [B, T, H] the layer's outputs h_t
  };

  layer_params& layer(std::size_t l) {
    if (l >= layers_.size())
      throw config_error(name_ + ": expected layer < " + std::to_string(layers_.size()) + ", got " +
                         std::to_string(l));
    return layers_[l];
  }

  /// Batch items per recurrence task: a multiple of `cb` (GEBP's column block) sized so that the
  /// threads get one slice each. Results do not depend on it (see the file comment).
  std::size_t slice_size(std::size_t B) const {
    const std::size_t per_thread = (B + num_threads() - 1) / num_threads();
    return std::clamp<std::size_t>(round_up(per_thread, cb), cb, round_up(max_slice, cb));
  }

  /// gates[r, :] = x[r, :] W_ih^T + b_ih for r < rows, in blocks of `proj_block` rows; a partial
  /// block of rows is padded to a multiple of `cb` so that each row is computed the same way.
  void project_inputs(const layer_params& p, const T* x, std::size_t in, std::size_t rows, T* out) {
    const std::size_t GH = G * opt_.hidden_size;
    const std::size_t blocks = (rows + proj_block - 1) / proj_block;
    const std::size_t parts = std::min(blocks, num_threads());
    if (proj_work_.size() < parts) proj_work_.resize(parts);
    const std::size_t work = w_ih_packed_.work_size(proj_block);
    const auto sin = static_cast<index_t>(in), sGH = static_cast<index_t>(GH);
    parallel_for(0, parts, [&](std::size_t part) {
      auto& ws = proj_work_[part];
      ensure_size(ws, work + cb * in + cb * GH);
      T* pack = ws.data();
      T* xpad = pack + work;
      T* ypad = xpad + cb * in;
      for (std::size_t blk = part * blocks / parts; blk < (part + 1) * blocks / parts; ++blk) {
        const std::size_t r0 = blk * proj_block, n = std::min(proj_block, rows - r0), n4 = n / cb * cb;
        T* y0 = out + r0 * GH;
        fill_rows(p.b_ih, y0, n);
        w_ih_packed_.multiply_add(x + r0 * in, sin, static_cast<index_t>(n4), y0, sGH, pack);
        if (n4 == n) continue;
        std::fill_n(xpad, cb * in, T(0));
        std::copy_n(x + (r0 + n4) * in, (n - n4) * in, xpad);
        fill_rows(p.b_ih, ypad, cb);
        w_ih_packed_.multiply_add(xpad, sin, static_cast<index_t>(cb), ypad, sGH, pack);
        std::copy_n(ypad, (n - n4) * GH, y0 + n4 * GH);
      }
    });
  }

  /// Sets `n` rows of `GH` scalars to `bias` (zeros when the stack has no bias).
  void fill_rows(const parameter<T>& bias, T* rows_ptr, std::size_t n) const {
    const std::size_t GH = G * opt_.hidden_size;
    for (std::size_t r = 0; r < n; ++r) {
      if (opt_.bias)
        std::copy_n(bias.value.data(), GH, rows_ptr + r * GH);
      else
        std::fill_n(rows_ptr + r * GH, GH, T(0));
    }
  }

  void forward_layer(std::size_t l, const T* x) {
    auto& p = layers_[l];
    auto& w = work_[l];
    const std::size_t B = batch_, T_ = time_, H = opt_.hidden_size, GH = G * H;
    const std::size_t in = l == 0 ? opt_.input_size : H;
    if (T_ == 0 || B == 0) return;
    w_ih_packed_.template pack<Eigen::RowMajor>(p.w_ih.value.data(), static_cast<index_t>(in),
                                                static_cast<index_t>(GH), static_cast<index_t>(in));
    w_hh_packed_.template pack<Eigen::RowMajor>(p.w_hh.value.data(), static_cast<index_t>(H),
                                                static_cast<index_t>(GH), static_cast<index_t>(H));
    project_inputs(p, x, in, B * T_, w.gates.data());
    const std::size_t S = slice_size(B), slices = (B + S - 1) / S;
    if (slice_work_.size() < slices) slice_work_.resize(slices);
    const std::size_t pack_size = w_hh_packed_.work_size(static_cast<index_t>(S));
    const T* h0 = h0_.data() + l * B * H;
    const T* c0 = Cell::has_cell_state ? c0_.data() + l * B * H : nullptr;
    parallel_for(0, slices, [&](std::size_t s) {
      const std::size_t b0 = s * S, nb = std::min(S, B - b0), nb4 = round_up(nb, cb);
      auto& ws = slice_work_[s];
      ensure_size(ws, pack_size + S * H + S * GH);
      T* pack = ws.data();
      T* hp = pack + pack_size;  // [nb4, H] h_{t-1} of the slice, zero-padded
      T* rec = hp + S * H;       // [nb4, GH] h_{t-1} W_hh^T + b_hh
      std::fill_n(hp, nb4 * H, T(0));
      for (std::size_t t = 0; t < T_; ++t) {
        for (std::size_t i = 0; i < nb; ++i) {
          const std::size_t b = b0 + i;
          std::copy_n(t == 0 ? h0 + b * H : w.h.data() + (b * T_ + t - 1) * H, H, hp + i * H);
        }
        fill_rows(p.b_hh, rec, nb4);
        w_hh_packed_.multiply_add(hp, static_cast<index_t>(H), static_cast<index_t>(nb4), rec,
                                  static_cast<index_t>(GH), pack);
        for (std::size_t i = 0; i < nb; ++i) {
          const std::size_t b = b0 + i, r = b * T_ + t;
          const T* c_prev = nullptr;
          if constexpr (Cell::has_cell_state) c_prev = t == 0 ? c0 + b * H : w.extra.data() + (r - 1) * H;
          Cell::forward(H, step_forward<T>{w.gates.data() + r * GH, rec + i * GH, hp + i * H, c_prev,
                                           w.h.data() + r * H, w.extra.data() + r * H});
        }
      }
    });
  }

  /// The time loop of backward for layer l: fills dgi_ [B*T, GH] with dL/d(x W_ih^T + b_ih) at
  /// (b, t), dgh_ with dL/d(h W_hh^T + b_hh) at (b, t) stored at row (b, t - 1) (row (b, T - 1)
  /// zero), so that dW_hh is one GEMM against the layer's outputs, and dgh0_ with the t = 0 rows.
  void backward_recurrence(std::size_t l, const T* dout) {
    auto& p = layers_[l];
    auto& w = work_[l];
    const std::size_t B = batch_, T_ = time_, H = opt_.hidden_size, GH = G * H;
    if (T_ == 0 || B == 0) return;
    // W_hh^T `[H, GH]` is the column-major view of W_hh `[GH, H]` row-major.
    w_hh_t_packed_.template pack<Eigen::ColMajor>(p.w_hh.value.data(), static_cast<index_t>(H),
                                                  static_cast<index_t>(H), static_cast<index_t>(GH));
    const std::size_t S = slice_size(B), slices = (B + S - 1) / S;
    if (slice_work_.size() < slices) slice_work_.resize(slices);
    const std::size_t pack_size = w_hh_t_packed_.work_size(static_cast<index_t>(S));
    const T* h0 = h0_.data() + l * B * H;
    const T* c0 = Cell::has_cell_state ? c0_.data() + l * B * H : nullptr;
    parallel_for(0, slices, [&](std::size_t s) {
      const std::size_t b0 = s * S, nb = std::min(S, B - b0), nb4 = round_up(nb, cb);
      auto& ws = slice_work_[s];
      ensure_size(ws, pack_size + 2 * S * H + S * GH);
      T* pack = ws.data();
      T* dh = pack + pack_size;  // [nb4, H] dL/dh_t through the recurrence
      T* dc = dh + S * H;        // [nb4, H] dL/dc_t through the recurrence (LSTM)
      T* dgh = dc + S * H;       // [nb4, GH] this step's recurrent gate gradients
      std::fill_n(dh, nb4 * H, T(0));
      std::fill_n(dc, nb4 * H, T(0));
      std::fill_n(dgh, nb4 * GH, T(0));
      for (std::size_t i = 0; i < nb; ++i) std::fill_n(dgh_.data() + ((b0 + i) * T_ + T_ - 1) * GH, GH, T(0));
      for (std::size_t t = T_; t-- > 0;) {
        for (std::size_t i = 0; i < nb; ++i) {
          const std::size_t b = b0 + i, r = b * T_ + t;
          const T* h_prev = t == 0 ? h0 + b * H : w.h.data() + (r - 1) * H;
          const T* c_prev = nullptr;
          if constexpr (Cell::has_cell_state) c_prev = t == 0 ? c0 + b * H : w.extra.data() + (r - 1) * H;
          Cell::backward(
              H, step_backward<T>{w.gates.data() + r * GH, w.extra.data() + r * H, h_prev, c_prev,
                                  dout + r * H, dh + i * H, dc + i * H, dgi_.data() + r * GH, dgh + i * GH});
          std::copy_n(dgh + i * GH, GH, t == 0 ? dgh0_.data() + b * GH : dgh_.data() + (r - 1) * GH);
        }
        if (t > 0)
          w_hh_t_packed_.multiply_add(dgh, static_cast<index_t>(GH), static_cast<index_t>(nb4), dh,
                                      static_cast<index_t>(H), pack);
      }
    });
  }

  recurrent_options opt_;
  std::string name_;
  std::vector<layer_params> layers_;
  // Forward state kept for backward.
  std::size_t batch_ = 0, time_ = 0;
  bool has_h0_ = false;
  tensor3<T> h0_, c0_;  // [L, B, H] initial states (zeros when none was given)
  std::vector<layer_work> work_;
  // Workspaces (grow only).
  packed_matrix<T> w_ih_packed_, w_hh_packed_, w_hh_t_packed_;
  std::vector<aligned_vector<T>> proj_work_, slice_work_;
  aligned_vector<T> dgi_, dgh_, dgh0_, dh_a_, dh_b_;
};

}  // namespace detail
}  // namespace cpc
