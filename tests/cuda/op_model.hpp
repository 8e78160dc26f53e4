#pragma once
// The paper's audio CPC model written directly on the op layer, for any backend: a strided conv
// encoder (each conv followed by the fused channel norm + ReLU), a one-layer GRU, K linear
// prediction heads and InfoNCE over host-drawn negatives (cpc::negative_sampler: seeded, exact
// positive excluded; drawn on the host and copied to the backend once per step), trained by Adam on
// one flat parameter buffer. Every buffer is `buffer_for<float, Backend>`, so the same code runs on
// cpu (host memory) and cuda (device memory).
//
// Why it exists: cpc's layers (layers/, encoder/, loss/, model/) still hold host tensors
// (`tensor3<T>`), so `cpc::model<..., cpc::cuda>` does not run yet (README, CUDA). This harness
// drives the same ops in the same order as those layers do, so that the CUDA kernels can be
// checked together in a training loop against cpu (tests/cuda/test_cuda_train.cu) and timed at the
// paper's sizes (tests/cuda/bench_cuda_step.cu) before the layers move to backend tensors.
#include <cpc/backend/ops.hpp>
#include <cpc/core/random.hpp>
#include <cpc/data/negative_sampler.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cpc::testing {

/// Sizes of `op_cpc`. Defaults: a small model for tests; `paper()` gives CPC's audio model.
struct op_cpc_options {
  std::size_t batch = 4, samples = 1280;
  std::vector<std::size_t> kernels{10, 8}, strides{5, 4}, paddings{3, 2};
  std::size_t channels = 32, hidden = 24, steps = 3, negatives = 8;
  std::uint64_t seed = 7;
  double learning_rate = 2e-3;
  /// The paper's audio model on 20480 samples: strides 5, 4, 2, 2, 2 (160x), 512 channels, GRU 256,
  /// K = 12, N = 128 (van den Oord et al. 2018, section 3.1).
  static op_cpc_options paper(std::size_t batch) {
    op_cpc_options o;
    o.batch = batch;
    o.samples = 20480;
    o.kernels = {10, 8, 4, 4, 4};
    o.strides = {5, 4, 2, 2, 2};
    o.paddings = {3, 2, 1, 1, 1};
    o.channels = 512;
    o.hidden = 256;
    o.steps = 12;
    o.negatives = 128;
    o.learning_rate = 2e-4;
    return o;
  }
};

/// Copies host vector `v` into backend buffer `b` (resized).
template <class Backend, class T>
void put(buffer_for<T, Backend>& b, const std::vector<T>& v) {
  ensure_size(b, v.size());
  if constexpr (host_accessible<Backend>)
    std::copy(v.begin(), v.end(), b.begin());
  else
    b.upload(v.data(), v.size());
}

/// A host copy of backend buffer `b`.
template <class Backend, class T>
std::vector<T> get(const buffer_for<T, Backend>& b) {
  if constexpr (host_accessible<Backend>)
    return std::vector<T>(b.begin(), b.end());
  else
    return b.to_host();
}

/// The model (see the file comment). Not copyable (workspaces point into it).
template <class Backend>
class op_cpc {
 public:
  explicit op_cpc(op_cpc_options o)
      : o_(o),
        sampler_({.policy = negative_policy::batch,
                  .negatives = o.negatives,
                  .steps = o.steps,
                  .sharing = negative_sharing::per_step}),
        gen_(o.seed) {
    const std::size_t L = o.kernels.size(), C = o.channels, H = o.hidden;
    std::size_t t = o.samples, c_in = 1, total = 0;
    auto slot = [&](std::size_t n) {
      const std::size_t at = total;
      total += (n + 15) / 16 * 16;
      return at;
    };
    for (std::size_t l = 0; l < L; ++l) {
      conv_.emplace_back();
      conv_[l].shape = {o.batch, t, c_in, C, o.kernels[l], o.strides[l], o.paddings[l]};
      conv_[l].w = slot(C * c_in * o.kernels[l]);
      conv_[l].b = slot(C);
      conv_[l].gamma = slot(C);
      conv_[l].beta = slot(C);
      t = conv_[l].shape.t_out();
      c_in = C;
    }
    time_ = t;
    w_ih_ = slot(3 * H * C);
    w_hh_ = slot(3 * H * H);
    b_ih_ = slot(3 * H);
    b_hh_ = slot(3 * H);
    for (std::size_t k = 0; k < o.steps; ++k) heads_.push_back(slot(C * H));
    size_ = total;
    // PyTorch-style init U(+-1/sqrt(fan_in)); norms 1 and 0.
    std::vector<float> v(total, 0.0f);
    rng init(o.seed + 1);
    auto uniform = [&](std::size_t at, std::size_t n, std::size_t fan_in) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      for (std::size_t i = 0; i < n; ++i) v[at + i] = static_cast<float>(init.uniform(-bound, bound));
    };
    for (auto& cv : conv_) {
      const std::size_t fan = cv.shape.c_in * cv.shape.kernel;
      uniform(cv.w, C * fan, fan);
      uniform(cv.b, C, fan);
      std::fill_n(v.begin() + static_cast<std::ptrdiff_t>(cv.gamma), C, 1.0f);
    }
    uniform(w_ih_, 3 * H * C, H);
    uniform(w_hh_, 3 * H * H, H);
    uniform(b_ih_, 3 * H, H);
    uniform(b_hh_, 3 * H, H);
    for (std::size_t k = 0; k < o.steps; ++k) uniform(heads_[k], C * H, H);
    put<Backend>(values_, v);
    put<Backend>(grads_, std::vector<float>(total, 0.0f));
    put<Backend>(exp_avg_, std::vector<float>(total, 0.0f));
    put<Backend>(exp_avg_sq_, std::vector<float>(total, 0.0f));
    put<Backend>(lengths_, std::vector<std::size_t>(o.batch, time_));
    // Activations.
    for (std::size_t l = 0; l < L; ++l) {
      const auto& s = conv_[l].shape;
      ensure_size(conv_[l].y, s.batch * s.t_out() * s.c_out);
      ensure_size(conv_[l].a, s.batch * s.t_out() * s.c_out);
      ensure_size(conv_[l].dy, s.batch * s.t_out() * s.c_out);
      ensure_size(conv_[l].da, s.batch * s.t_out() * s.c_out);
    }
    const std::size_t BT = o.batch * time_;
    ensure_size(gates_, BT * 3 * H);
    ensure_size(h_, BT * H);
    ensure_size(extra_, BT * H);
    ensure_size(h0_, o.batch * H);
    ensure_size(dh_, BT * H);
    ensure_size(dgi_, BT * 3 * H);
    ensure_size(dgh_, BT * 3 * H);
    ensure_size(dgh0_, o.batch * 3 * H);
    ensure_size(p_, BT * C);
    ensure_size(dp_, BT * C);
    ensure_size(cand_, BT * (o.negatives + 1));
    ensure_size(logits_, BT * (o.negatives + 1));
    ensure_size(anchor_loss_, BT);
    ensure_size(anchor_hit_, BT);
    put<Backend>(h0_, std::vector<float>(o.batch * H, 0.0f));
  }
  op_cpc(const op_cpc&) = delete;
  op_cpc& operator=(const op_cpc&) = delete;

  /// Frames per item after the encoder.
  std::size_t frames() const { return time_; }
  /// Scalars in the flat parameter buffer.
  std::size_t parameter_count() const { return size_; }
  /// Host copies of the flat values and gradients.
  std::vector<float> values() const { return get<Backend>(values_); }
  std::vector<float> grads() const { return get<Backend>(grads_); }
  /// The negatives of the last step `[K, B, T, N]` (host).
  const tensor<std::int32_t, 4>& negatives() const { return sampler_.indices(); }

  /// Replaces the flat values (host, `parameter_count()` scalars).
  void set_values(const std::vector<float>& v) { put<Backend>(values_, v); }
  /// Restarts the negatives' generator (the next step draws what a fresh model with `seed` would).
  void reseed(std::uint64_t seed) { gen_ = rng(seed); }

  /// One training step on audio `[batch, samples]` (host memory): draws negatives on the host,
  /// copies audio and negatives to the backend, forward, backward and (with `update`) one Adam
  /// update. Returns the loss (mean over steps k of the mean InfoNCE term); the gradient stays in
  /// `grads()`.
  double train_step(const std::vector<float>& audio, bool update = true) {
    const std::size_t B = o_.batch, T = time_, BT = B * T, C = o_.channels, H = o_.hidden, K = o_.steps,
                      N = o_.negatives, G = 3 * H;
    sampler_.sample(B, T, batch_info{}, gen_);
    const auto& neg = sampler_.indices();
    put<Backend>(negatives_, std::vector<std::int32_t>(neg.data(), neg.data() + neg.size()));
    put<Backend>(audio_, audio);
    float* P = values_.data();
    float* D = grads_.data();
    ops::fill<Backend>(ops::fill_args<float>{.n = size_, .value = 0.0f, .y = D});

    // Encoder.
    const float* x = audio_.data();
    for (auto& cv : conv_) {
      ops::conv1d_forward<Backend>(
          ops::conv1d_forward_args<float>{cv.shape, x, P + cv.w, P + cv.b, cv.y.data()}, cv.ws);
      ops::layer_norm_forward<Backend>(ops::layer_norm_forward_args<float>{.rows = B * cv.shape.t_out(),
                                                                           .cols = C,
                                                                           .eps = 1e-5,
                                                                           .relu = true,
                                                                           .x = cv.y.data(),
                                                                           .weight = P + cv.gamma,
                                                                           .bias = P + cv.beta,
                                                                           .y = cv.a.data()});
      x = cv.a.data();
    }
    const float* z = x;
    // GRU.
    gemm(BT, G, C, z, C, 1, P + w_ih_, 1, C, gates_.data(), G, false);
    ops::recurrent_forward<Backend>(ops::recurrent_forward_args<float>{.cell = ops::rnn_cell::gru,
                                                                       .batch = B,
                                                                       .time = T,
                                                                       .hidden = H,
                                                                       .gates = gates_.data(),
                                                                       .w_hh = P + w_hh_,
                                                                       .b_ih = P + b_ih_,
                                                                       .b_hh = P + b_hh_,
                                                                       .h0 = h0_.data(),
                                                                       .h = h_.data(),
                                                                       .extra = extra_.data()},
                                    rec_ws_);
    // InfoNCE heads, with their backward right away (one prediction buffer).
    float* dz = conv_.back().da.data();
    ops::fill<Backend>(ops::fill_args<float>{.n = BT * C, .value = 0.0f, .y = dz});
    ops::fill<Backend>(ops::fill_args<float>{.n = BT * H, .value = 0.0f, .y = dh_.data()});
    double loss = 0;
    std::size_t used = 0;
    for (std::size_t k = 1; k <= K; ++k) used += T > k ? 1 : 0;
    for (std::size_t k = 1; k <= K; ++k) {
      if (T <= k) continue;
      const std::size_t terms = B * (T - k);
      float* Wk = P + heads_[k - 1];
      gemm(BT, C, H, h_.data(), H, 1, Wk, 1, H, p_.data(), C, false);
      double total = 0;
      std::size_t hits = 0;
      ops::info_nce_anchor_terms<Backend>(ops::info_nce_anchor_args<float>{
          .batch = B,
          .time = T,
          .dim = C,
          .negatives = N,
          .step = k,
          .lengths = lengths_.data(),
          .p = p_.data(),
          .z = z,
          .negative_index = negatives_.data() + (k - 1) * BT * N,
          .scale = 1.0f,
          .weight = 1.0 / (static_cast<double>(terms) * static_cast<double>(used)),
          .candidates = cand_.data(),
          .logits = logits_.data(),
          .anchor_loss = anchor_loss_.data(),
          .anchor_hit = anchor_hit_.data(),
          .dp = dp_.data(),
          .loss_sum = &total,
          .hits = &hits});
      loss += total / static_cast<double>(terms) / static_cast<double>(used);
      ops::info_nce_scatter_dz<Backend>(ops::info_nce_scatter_args<float>{.batch = B,
                                                                          .time = T,
                                                                          .dim = C,
                                                                          .negatives = N,
                                                                          .step = k,
                                                                          .lengths = lengths_.data(),
                                                                          .candidates = cand_.data(),
                                                                          .coeff = logits_.data(),
                                                                          .p = p_.data(),
                                                                          .dz = dz},
                                        scatter_ws_);
      gemm(C, H, BT, dp_.data(), 1, C, h_.data(), H, 1, D + heads_[k - 1], H, true);  // dW_k += dP^T h
      gemm(BT, H, C, dp_.data(), C, 1, Wk, H, 1, dh_.data(), H, true);                // dh += dP W_k
    }
    // GRU backward.
    ops::recurrent_backward<Backend>(ops::recurrent_backward_args<float>{.cell = ops::rnn_cell::gru,
                                                                         .batch = B,
                                                                         .time = T,
                                                                         .hidden = H,
                                                                         .gates = gates_.data(),
                                                                         .extra = extra_.data(),
                                                                         .h = h_.data(),
                                                                         .h0 = h0_.data(),
                                                                         .w_hh = P + w_hh_,
                                                                         .dy = dh_.data(),
                                                                         .dgi = dgi_.data(),
                                                                         .dgh = dgh_.data(),
                                                                         .dgh0 = dgh0_.data()},
                                     rec_ws_);
    gemm(G, C, BT, dgi_.data(), 1, G, z, C, 1, D + w_ih_, C, true);          // dW_ih += dG_i^T z
    gemm(G, H, BT, dgh_.data(), 1, G, h_.data(), H, 1, D + w_hh_, H, true);  // dW_hh += dG_h^T h (h0 = 0)
    const auto sG = static_cast<std::ptrdiff_t>(G);
    ops::sum_rows<Backend>(ops::sum_rows_args<float>{BT, G, dgi_.data(), sG, D + b_ih_});
    ops::sum_rows<Backend>(ops::sum_rows_args<float>{BT, G, dgh_.data(), sG, D + b_hh_});
    ops::sum_rows<Backend>(ops::sum_rows_args<float>{B, G, dgh0_.data(), sG, D + b_hh_});
    gemm(BT, C, G, dgi_.data(), G, 1, P + w_ih_, C, 1, dz, C, true);  // dz += dG_i W_ih
    // Encoder backward.
    for (std::size_t l = conv_.size(); l-- > 0;) {
      auto& cv = conv_[l];
      const std::size_t rows = B * cv.shape.t_out();
      ops::layer_norm_backward<Backend>(ops::layer_norm_backward_args<float>{.rows = rows,
                                                                             .cols = C,
                                                                             .eps = 1e-5,
                                                                             .relu = true,
                                                                             .x = cv.y.data(),
                                                                             .y = cv.a.data(),
                                                                             .dy = cv.da.data(),
                                                                             .weight = P + cv.gamma,
                                                                             .dx = cv.dy.data(),
                                                                             .d_weight = D + cv.gamma,
                                                                             .d_bias = D + cv.beta},
                                        cv.norm_ws);
      const float* in = l == 0 ? audio_.data() : conv_[l - 1].a.data();
      ops::conv1d_backward_params<Backend>(
          ops::conv1d_backward_params_args<float>{cv.shape, in, cv.dy.data(), D + cv.w, D + cv.b}, cv.ws);
      if (l > 0)
        ops::conv1d_backward_input<Backend>(
            ops::conv1d_backward_input_args<float>{cv.shape, cv.dy.data(), P + cv.w, conv_[l - 1].da.data()},
            cv.ws);
    }
    if (!update) return loss;
    // Adam (torch semantics), one launch over the flat buffers.
    ++steps_;
    const double bc1 = 1.0 - std::pow(0.9, static_cast<double>(steps_)),
                 bc2 = 1.0 - std::pow(0.999, static_cast<double>(steps_));
    ops::adam_update<Backend>(
        ops::adam_update_args<float>{.n = size_,
                                     .value = P,
                                     .grad = D,
                                     .exp_avg = exp_avg_.data(),
                                     .exp_avg_sq = exp_avg_sq_.data(),
                                     .step_size = static_cast<float>(o_.learning_rate / bc1),
                                     .bc2_sqrt = static_cast<float>(std::sqrt(bc2)),
                                     .beta1 = 0.9f,
                                     .beta2 = 0.999f,
                                     .one_minus_beta1 = 0.1f,
                                     .one_minus_beta2 = 0.001f,
                                     .eps = 1e-8f});
    return loss;
  }

 private:
  struct conv_layer {
    ops::conv1d_shape shape;
    std::size_t w = 0, b = 0, gamma = 0, beta = 0;  // offsets into the flat buffers
    buffer_for<float, Backend> y, a, dy, da;        // conv output, norm+ReLU output, their gradients
    ops::conv1d_workspace<Backend, float> ws;
    ops::layer_norm_workspace<Backend, float> norm_ws;
  };

  // C (m x n, ldc) (+)= A B with A(i, p) = a[i * ars + p * ads], B(p, j) = b[p * brs + j * bcs].
  void gemm(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t ars, std::size_t ads,
            const float* b, std::size_t brs, std::size_t bcs, float* c, std::size_t ldc, bool accumulate) {
    ops::gemm<Backend>(ops::gemm_args<float>{.m = m,
                                             .n = n,
                                             .k = k,
                                             .a = a,
                                             .a_row_stride = static_cast<std::ptrdiff_t>(ars),
                                             .a_depth_stride = static_cast<std::ptrdiff_t>(ads),
                                             .b = b,
                                             .b_row_stride = static_cast<std::ptrdiff_t>(brs),
                                             .b_col_stride = static_cast<std::ptrdiff_t>(bcs),
                                             .c = c,
                                             .ldc = static_cast<std::ptrdiff_t>(ldc),
                                             .accumulate = accumulate},
                       gemm_ws_);
  }

  op_cpc_options o_;
  negative_sampler sampler_;
  rng gen_;
  std::vector<conv_layer> conv_;
  std::size_t time_ = 0, size_ = 0, w_ih_ = 0, w_hh_ = 0, b_ih_ = 0, b_hh_ = 0;
  std::vector<std::size_t> heads_;
  std::uint64_t steps_ = 0;
  buffer_for<float, Backend> values_, grads_, exp_avg_, exp_avg_sq_;
  buffer_for<float, Backend> audio_, gates_, h_, extra_, h0_, dh_, dgi_, dgh_, dgh0_, p_, dp_, logits_;
  buffer_for<std::int32_t, Backend> negatives_, cand_;
  buffer_for<std::size_t, Backend> lengths_;
  buffer_for<double, Backend> anchor_loss_;
  buffer_for<unsigned char, Backend> anchor_hit_;
  ops::gemm_workspace<Backend, float> gemm_ws_;
  ops::recurrent_workspace<Backend, float> rec_ws_;
  ops::info_nce_scatter_workspace<Backend, float> scatter_ws_;
};

}  // namespace cpc::testing
