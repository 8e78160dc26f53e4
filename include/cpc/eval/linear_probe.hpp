#pragma once
/// Linear probe: multinomial logistic regression (a softmax linear classifier) trained on frozen
/// features, as in the paper's evaluation (van den Oord et al. 2018, section 3.1: "we train a
/// linear classifier on top of these features"; same as torch.nn.Linear + CrossEntropyLoss
/// trained with torch.optim.Adam).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"

namespace cpc {

/// Softmax linear classifier p(c | x) = softmax(W z + b)_c on standardised inputs
/// z = (x - mean) / std, where mean and std (population, per feature; a constant feature gets
/// std 1) are computed once from the labelled rows given to `fit` and then applied unchanged to
/// every input (`standardise = false`: z = x).
/// Training: minibatch Adam (beta1 0.9, beta2 0.999, eps 1e-8; constant learning rate) on the mean
/// cross-entropy of the labelled rows plus weight_decay / 2 * ||W||^2 (bias not decayed), from
/// W = 0, b = 0 (the problem is convex); each epoch visits the labelled rows once in an order
/// shuffled by a cpc::rng seeded with `seed`, so the result depends only on data, options and
/// build (not on the thread count).
/// Shapes: x `[N, features]` float rows, labels `[N]` ints in [0, classes) or -1 (unlabelled,
/// skipped everywhere); weight `[classes, features]`, bias `[classes]`.
/// Errors: `cpc::shape_error` for a wrong feature count or label count; `cpc::config_error` for
/// zero sizes, a label out of range, or no labelled rows.
template <class T = float>
class linear_probe {
 public:
  /// Training settings (fixed defaults, so that reported probe results are reproducible).
  struct options {
    std::size_t epochs = 20;
    double learning_rate = 1e-3;
    std::size_t batch_size = 256;
    double weight_decay = 0;
    std::uint64_t seed = 0;
    bool standardise = true;
  };

  /// A probe from `features`-dimensional inputs to `classes` classes, with W = 0, b = 0 and
  /// identity standardisation until `fit`.
  linear_probe(std::size_t features, std::size_t classes, options opt = {})
      : opt_(opt), features_(features), classes_(classes) {
    if (features == 0 || classes == 0)
      throw config_error("linear_probe: expected features > 0 and classes > 0, got " +
                         std::to_string(features) + " and " + std::to_string(classes));
    if (opt.batch_size == 0) throw config_error("linear_probe: expected batch_size > 0");
    if (!(opt.learning_rate > 0)) throw config_error("linear_probe: expected learning_rate > 0");
    weight_ = xt::zeros<T>({classes, features});
    bias_ = xt::zeros<T>({classes});
    mean_ = xt::zeros<T>({features});
    inv_std_ = xt::ones<T>({features});
  }

  const options& config() const { return opt_; }
  std::size_t features() const { return features_; }
  std::size_t classes() const { return classes_; }

  /// Trains from W = 0, b = 0 on the labelled rows of `x` (see the class comment). Returns the
  /// mean training objective of the last epoch.
  double fit(const tensor2<T>& x, std::span<const int> labels) {
    check_inputs("linear_probe::fit", x, labels);
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] != -1) rows.push_back(i);
    if (rows.empty()) throw config_error("linear_probe::fit: no labelled rows (every label is -1)");
    if (opt_.standardise) compute_statistics(x, rows);
    weight_.fill(T(0));
    bias_.fill(T(0));
    const std::size_t np = classes_ * features_ + classes_;
    std::vector<T> grad(np), m(np, T(0)), v(np, T(0));
    tensor2<T> dweight = xt::zeros<T>({classes_, features_});
    tensor1<T> dbias = xt::zeros<T>({classes_});
    rng gen(opt_.seed);
    const std::size_t bs = opt_.batch_size;
    batch_x_.resize({bs, features_});
    batch_y_.resize(bs);
    std::size_t step = 0;
    double epoch_loss = 0;
    for (std::size_t epoch = 0; epoch < opt_.epochs; ++epoch) {
      for (std::size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[gen.uniform_int(i)]);
      epoch_loss = 0;
      for (std::size_t b0 = 0; b0 < rows.size(); b0 += bs) {
        const std::size_t n = std::min(bs, rows.size() - b0);
        for (std::size_t r = 0; r < n; ++r) {
          standardise_row(x.data() + rows[b0 + r] * features_, batch_x_.data() + r * features_);
          batch_y_[r] = labels[rows[b0 + r]];
        }
        epoch_loss += batch_objective(batch_x_.data(), batch_y_.data(), n, &dweight, &dbias, scores_) *
                      static_cast<double>(n);
        // Adam (Kingma & Ba 2015, Algorithm 1) over the flat parameter vector [W, b].
        ++step;
        std::copy(dweight.begin(), dweight.end(), grad.begin());
        std::copy(dbias.begin(), dbias.end(),
                  grad.begin() + static_cast<std::ptrdiff_t>(classes_ * features_));
        const double c1 = 1 - std::pow(0.9, static_cast<double>(step));
        const double c2 = 1 - std::pow(0.999, static_cast<double>(step));
        for (std::size_t p = 0; p < np; ++p) {
          m[p] = static_cast<T>(0.9 * m[p] + 0.1 * grad[p]);
          v[p] = static_cast<T>(0.999 * v[p] + 0.001 * grad[p] * grad[p]);
          const double update = opt_.learning_rate * (m[p] / c1) / (std::sqrt(v[p] / c2) + 1e-8);
          T& param = p < classes_ * features_ ? weight_.data()[p] : bias_.data()[p - classes_ * features_];
          param = static_cast<T>(param - update);
        }
      }
      epoch_loss /= static_cast<double>(rows.size());
    }
    return epoch_loss;
  }

  /// Class scores W z + b. Shapes: x `[N, features]` -> out resized to `[N, classes]`.
  void logits(const tensor2<T>& x, tensor2<T>& out) const {
    check_shape("linear_probe::logits input", x, {any, static_cast<std::ptrdiff_t>(features_)});
    const std::size_t n = x.shape()[0];
    ensure_shape(out, std::array<std::size_t, 2>{n, classes_});
    const std::size_t blocks = (n + row_block - 1) / row_block;
    parallel_for(0, blocks, [&](std::size_t blk) {
      const std::size_t r0 = blk * row_block, nr = std::min(row_block, n - r0);
      std::vector<T> z(nr * features_);
      for (std::size_t r = 0; r < nr; ++r)
        standardise_row(x.data() + (r0 + r) * features_, z.data() + r * features_);
      scores(z.data(), nr, out.data() + r0 * classes_);
    });
  }

  /// The most probable class of each row (ties: the lowest index). Shapes: x `[N, features]` -> `[N]`.
  std::vector<int> predict(const tensor2<T>& x) const {
    tensor2<T> s;
    logits(x, s);
    std::vector<int> out(x.shape()[0]);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const T* row = s.data() + i * classes_;
      out[i] = static_cast<int>(std::max_element(row, row + classes_) - row);
    }
    return out;
  }

  /// Fraction of labelled rows (label != -1) whose prediction equals the label, in [0, 1].
  /// Errors: as `fit` (including no labelled rows).
  double accuracy(const tensor2<T>& x, std::span<const int> labels) const {
    check_inputs("linear_probe::accuracy", x, labels);
    const auto pred = predict(x);
    std::size_t hit = 0, count = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] == -1) continue;
      ++count;
      hit += pred[i] == labels[i];
    }
    if (count == 0) throw config_error("linear_probe::accuracy: no labelled rows (every label is -1)");
    return static_cast<double>(hit) / static_cast<double>(count);
  }

  /// The training objective on the labelled rows of `x` with the current parameters and
  /// standardisation: mean cross-entropy + weight_decay / 2 * ||W||^2. When `dweight` / `dbias`
  /// are given they are resized to `[classes, features]` / `[classes]` and overwritten with its
  /// gradient. Errors: as `fit`.
  double objective(const tensor2<T>& x, std::span<const int> labels, tensor2<T>* dweight = nullptr,
                   tensor1<T>* dbias = nullptr) const {
    check_inputs("linear_probe::objective", x, labels);
    std::vector<T> z;
    std::vector<int> y;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] == -1) continue;
      z.resize(z.size() + features_);
      standardise_row(x.data() + i * features_, z.data() + z.size() - features_);
      y.push_back(labels[i]);
    }
    if (y.empty()) throw config_error("linear_probe::objective: no labelled rows (every label is -1)");
    if (dweight != nullptr) ensure_shape(*dweight, std::array<std::size_t, 2>{classes_, features_});
    if (dbias != nullptr) ensure_shape(*dbias, std::array<std::size_t, 1>{classes_});
    std::vector<T> scratch;
    return batch_objective(z.data(), y.data(), y.size(), dweight, dbias, scratch);
  }

  /// Weights `[classes, features]` acting on standardised inputs.
  tensor2<T>& weight() { return weight_; }
  /// Bias `[classes]`.
  tensor1<T>& bias() { return bias_; }
  /// Per-feature mean `[features]` subtracted before the weights (zeros until `fit`).
  const tensor1<T>& mean() const { return mean_; }
  /// Per-feature 1 / std `[features]` applied before the weights (ones until `fit`).
  const tensor1<T>& inverse_std() const { return inv_std_; }

 private:
  static constexpr std::size_t row_block = 512;

  void check_inputs(const char* where, const tensor2<T>& x, std::span<const int> labels) const {
    check_shape(std::string(where) + " input", x, {any, static_cast<std::ptrdiff_t>(features_)});
    if (labels.size() != x.shape()[0])
      throw shape_error(std::string(where) + " labels: expected [" + std::to_string(x.shape()[0]) +
                        "], got [" + std::to_string(labels.size()) + "]");
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < -1 || labels[i] >= static_cast<int>(classes_))
        throw config_error(std::string(where) + ": label " + std::to_string(labels[i]) + " at row " +
                           std::to_string(i) + " is outside [0, " + std::to_string(classes_) +
                           ") and not -1");
  }

  void compute_statistics(const tensor2<T>& x, const std::vector<std::size_t>& rows) {
    std::vector<double> sum(features_, 0.0), sq(features_, 0.0);
    for (std::size_t r : rows) {
      const T* row = x.data() + r * features_;
      for (std::size_t j = 0; j < features_; ++j) sum[j] += static_cast<double>(row[j]);
    }
    const double n = static_cast<double>(rows.size());
    for (std::size_t j = 0; j < features_; ++j) sum[j] /= n;
    for (std::size_t r : rows) {
      const T* row = x.data() + r * features_;
      for (std::size_t j = 0; j < features_; ++j) {
        const double d = static_cast<double>(row[j]) - sum[j];
        sq[j] += d * d;
      }
    }
    for (std::size_t j = 0; j < features_; ++j) {
      const double sd = std::sqrt(sq[j] / n);
      mean_[j] = static_cast<T>(sum[j]);
      inv_std_[j] = static_cast<T>(sd > 1e-12 * std::max(1.0, std::abs(sum[j])) ? 1.0 / sd : 1.0);
    }
  }

  void standardise_row(const T* in, T* out) const {
    for (std::size_t j = 0; j < features_; ++j) out[j] = (in[j] - mean_[j]) * inv_std_[j];
  }

  /// out `[n, classes]` = z `[n, features]` W^T + b.
  void scores(const T* z, std::size_t n, T* out) const {
    const auto c = static_cast<std::ptrdiff_t>(classes_), d = static_cast<std::ptrdiff_t>(features_);
    auto s = cpu_kernels::matrix_map(out, static_cast<std::ptrdiff_t>(n), c);
    s.noalias() = cpu_kernels::matrix_map(z, static_cast<std::ptrdiff_t>(n), d) *
                  cpu_kernels::matrix_map(weight_.data(), c, d).transpose();
    s.rowwise() += cpu_kernels::row_vector_map(bias_.data(), c);
  }

  /// Mean cross-entropy of n standardised rows z with labels y (all in range) plus the weight
  /// penalty; writes its gradient to dweight / dbias (already sized) when they are not null.
  /// `work` is a scratch buffer.
  double batch_objective(const T* z, const int* y, std::size_t n, tensor2<T>* dweight, tensor1<T>* dbias,
                         std::vector<T>& work) const {
    const auto c = static_cast<std::ptrdiff_t>(classes_), d = static_cast<std::ptrdiff_t>(features_);
    work.resize(n * classes_);
    scores(z, n, work.data());
    double loss = 0;
    for (std::size_t i = 0; i < n; ++i) {
      T* row = work.data() + i * classes_;
      const T mx = *std::max_element(row, row + classes_);
      double sum = 0;
      for (std::size_t k = 0; k < classes_; ++k) sum += std::exp(static_cast<double>(row[k] - mx));
      const double lse = static_cast<double>(mx) + std::log(sum);
      loss += lse - static_cast<double>(row[y[i]]);
      // Row becomes d loss / d scores = (softmax - onehot) / n.
      for (std::size_t k = 0; k < classes_; ++k)
        row[k] = static_cast<T>(std::exp(static_cast<double>(row[k]) - lse) / static_cast<double>(n));
      row[y[i]] = static_cast<T>(row[y[i]] - T(1) / static_cast<T>(n));
    }
    loss /= static_cast<double>(n);
    double penalty = 0;
    for (auto w : weight_) penalty += static_cast<double>(w) * static_cast<double>(w);
    loss += 0.5 * opt_.weight_decay * penalty;
    const auto ds =
        cpu_kernels::matrix_map(static_cast<const T*>(work.data()), static_cast<std::ptrdiff_t>(n), c);
    if (dweight != nullptr) {
      auto dw = cpu_kernels::matrix_map(dweight->data(), c, d);
      dw.noalias() = ds.transpose() * cpu_kernels::matrix_map(z, static_cast<std::ptrdiff_t>(n), d);
      dw += static_cast<T>(opt_.weight_decay) * cpu_kernels::matrix_map(weight_.data(), c, d);
    }
    if (dbias != nullptr) cpu_kernels::row_vector_map(dbias->data(), c).noalias() = ds.colwise().sum();
    return loss;
  }

  options opt_;
  std::size_t features_, classes_;
  tensor2<T> weight_;
  tensor1<T> bias_, mean_, inv_std_;
  tensor2<T> batch_x_;
  std::vector<int> batch_y_;
  std::vector<T> scores_;
};

}  // namespace cpc
