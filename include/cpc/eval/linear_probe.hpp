#pragma once
/// Linear probe: multinomial logistic regression (a softmax linear classifier) trained on frozen
/// features, as in the paper's evaluation (van den Oord et al. 2018, section 3.1: "we train a
/// linear classifier on top of these features"). Built from the library's own pieces: the
/// classifier is a `cpc::linear` layer (torch.nn.Linear) and it is trained by `cpc::adam`
/// (torch.optim.Adam) with a `cpc::cosine_annealing` learning rate, i.e. torch.nn.Linear +
/// CrossEntropyLoss + Adam + CosineAnnealingLR.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/linear.hpp"
#include "cpc/optim/adam.hpp"
#include "cpc/optim/schedule.hpp"

namespace cpc {

/// Softmax linear classifier p(c | x) = softmax(W z + b)_c on standardised inputs
/// z = (x - mean) / std, where mean and std (population, per feature; a constant feature gets
/// std 1) are computed once from the labelled rows given to `fit` and then applied unchanged to
/// every input (`standardise = false`: z = x).
/// Objective over n labelled rows: mean cross-entropy + lambda / 2 ||W||^2 (bias not penalised),
/// lambda = weight_decay + inverse_c / n: `inverse_c` is scikit-learn's 1 / C (LogisticRegression's
/// penalty on the summed loss), so the penalty fades as rows are added and a few hundred separable
/// rows (speaker windows) still have a finite optimum that training reaches.
/// Training (`fit`): from W = 0, b = 0 (the problem is convex), minibatch Adam (beta1 0.9, beta2
/// 0.999, eps 1e-8) on that objective, for `updates(n)` = max(epochs x ceil(n / batch_size), min_updates)
/// Adam updates over n labelled rows, the learning rate annealed from `learning_rate` to 0 on a cosine
/// (`cosine_annealing`). The floor `min_updates` makes a probe on a few hundred rows (speaker
/// windows) converge as one on 10^5 frames does: by epochs alone, 500 rows would get a few dozen
/// updates. Rows are visited in epochs, each in an order shuffled by a cpc::rng seeded with `seed`,
/// so the result depends only on data, options and build (not on the thread count).
/// Shapes: x `[N, features]` rows, labels `[N]` ints in [0, classes) or -1 (unlabelled, skipped
/// everywhere); weight `[classes, features]`, bias `[classes]` (the `cpc::linear` layer's).
/// Errors: `cpc::shape_error` for a wrong feature count or label count; `cpc::config_error` for
/// zero sizes, a label out of range, or no labelled rows.
template <class T = float>
class linear_probe {
 public:
  /// Training settings (fixed defaults, so that reported probe results are reproducible).
  struct options {
    std::size_t epochs = 20;       ///< passes over the labelled rows, at least
    std::size_t min_updates = 0;   ///< Adam updates, at least (0: epochs alone decide)
    double learning_rate = 1e-3;   ///< the initial rate of the cosine schedule
    std::size_t batch_size = 256;  ///< rows per update
    double weight_decay = 0;       ///< L2 penalty on W (not b) per mean loss
    double inverse_c = 0;          ///< L2 penalty on W per summed loss (scikit-learn's 1 / C)
    std::uint64_t seed = 0;        ///< order of the rows
    bool standardise = true;       ///< standardise features with the training rows' statistics
  };

  /// A probe from `features`-dimensional inputs to `classes` classes, with W = 0, b = 0 and
  /// identity standardisation until `fit`.
  linear_probe(std::size_t features, std::size_t classes, options opt = {})
      : opt_(opt), features_(features), classes_(classes), layer_(make_layer(features, classes)) {
    if (opt.batch_size == 0) throw config_error("linear_probe: expected batch_size > 0");
    if (!(opt.learning_rate > 0)) throw config_error("linear_probe: expected learning_rate > 0");
    if (opt.epochs == 0 && opt.min_updates == 0)
      throw config_error("linear_probe: expected epochs > 0 or min_updates > 0");
    if (!(opt.weight_decay >= 0 && opt.inverse_c >= 0))
      throw config_error("linear_probe: expected weight_decay >= 0 and inverse_c >= 0");
    layer_.weight().value.fill(T(0));
    layer_.bias().value.fill(T(0));
    mean_ = xt::zeros<T>({features});
    inv_std_ = xt::ones<T>({features});
  }

  const options& config() const { return opt_; }
  std::size_t features() const { return features_; }
  std::size_t classes() const { return classes_; }

  /// Adam updates `fit` takes for `rows` labelled rows: max(epochs x ceil(rows / batch_size),
  /// min_updates).
  std::size_t updates(std::size_t rows) const {
    const std::size_t per_epoch = (rows + opt_.batch_size - 1) / opt_.batch_size;
    return std::max(opt_.epochs * per_epoch, opt_.min_updates);
  }

  /// Trains from W = 0, b = 0 on the labelled rows of `x` (see the class comment). Returns the
  /// mean training objective over the last pass through the rows (the last `ceil(n / batch_size)`
  /// updates), each batch's value taken before its update.
  double fit(const tensor2<T>& x, std::span<const int> labels) {
    check_inputs("linear_probe::fit", x, labels);
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] != -1) rows.push_back(i);
    if (rows.empty()) throw config_error("linear_probe::fit: no labelled rows (every label is -1)");
    if (opt_.standardise) compute_statistics(x, rows);
    layer_.weight().value.fill(T(0));
    layer_.bias().value.fill(T(0));
    lambda_ = penalty(rows.size());
    adam<T> opt(named_parameters<T>(layer_), {.learning_rate = opt_.learning_rate});
    const std::size_t total = updates(rows.size()), bs = opt_.batch_size;
    const std::size_t per_epoch = (rows.size() + bs - 1) / bs;
    const cosine_annealing schedule{opt_.learning_rate, total};
    rng gen(opt_.seed);
    std::vector<int> y;
    double last_pass = 0, last_rows = 0;
    for (std::size_t step = 0, b0 = rows.size(); step < total; ++step, b0 += bs) {
      if (b0 >= rows.size()) {  // a new epoch: a new order
        for (std::size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[gen.uniform_int(i)]);
        b0 = 0;
      }
      const std::size_t n = std::min(bs, rows.size() - b0);
      ensure_shape(z_, std::array<std::size_t, 3>{1, n, features_});
      y.resize(n);
      for (std::size_t r = 0; r < n; ++r) {
        standardise_row(x.data() + rows[b0 + r] * features_, z_.data() + r * features_);
        y[r] = labels[rows[b0 + r]];
      }
      const double loss = gradients(y);
      if (step + per_epoch >= total) {
        last_pass += loss * static_cast<double>(n);
        last_rows += static_cast<double>(n);
      }
      apply_schedule(schedule, opt);
      opt.step();
    }
    return last_pass / last_rows;
  }

  /// Class scores W z + b. Shapes: x `[N, features]` -> out resized to `[N, classes]`.
  void logits(const tensor2<T>& x, tensor2<T>& out) {
    check_shape("linear_probe::logits input", x, {any, static_cast<std::ptrdiff_t>(features_)});
    const std::size_t n = x.shape()[0];
    ensure_shape(out, std::array<std::size_t, 2>{n, classes_});
    for (std::size_t r0 = 0; r0 < n; r0 += row_block) {
      const std::size_t nr = std::min(row_block, n - r0);
      ensure_shape(z_, std::array<std::size_t, 3>{1, nr, features_});
      for (std::size_t r = 0; r < nr; ++r)
        standardise_row(x.data() + (r0 + r) * features_, z_.data() + r * features_);
      layer_.forward(z_, scores_);
      std::copy_n(scores_.data(), nr * classes_, out.data() + r0 * classes_);
    }
  }

  /// The most probable class of each row (ties: the lowest index). Shapes: x `[N, features]` -> `[N]`.
  std::vector<int> predict(const tensor2<T>& x) {
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
  double accuracy(const tensor2<T>& x, std::span<const int> labels) {
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
  /// standardisation: mean cross-entropy + lambda / 2 * ||W||^2 (lambda for this many rows, see the
  /// class comment). When `dweight` / `dbias`
  /// are given they are resized to `[classes, features]` / `[classes]` and overwritten with its
  /// gradient (the layer's own gradients are overwritten too). Errors: as `fit`.
  double objective(const tensor2<T>& x, std::span<const int> labels, tensor2<T>* dweight = nullptr,
                   tensor1<T>* dbias = nullptr) {
    check_inputs("linear_probe::objective", x, labels);
    std::vector<int> y;
    for (int l : labels)
      if (l != -1) y.push_back(l);
    if (y.empty()) throw config_error("linear_probe::objective: no labelled rows (every label is -1)");
    lambda_ = penalty(y.size());
    ensure_shape(z_, std::array<std::size_t, 3>{1, y.size(), features_});
    for (std::size_t i = 0, r = 0; i < labels.size(); ++i)
      if (labels[i] != -1) standardise_row(x.data() + i * features_, z_.data() + r++ * features_);
    const double loss = gradients(y);
    if (dweight != nullptr) {
      ensure_shape(*dweight, std::array<std::size_t, 2>{classes_, features_});
      std::copy_n(layer_.weight().grad.data(), dweight->size(), dweight->data());
    }
    if (dbias != nullptr) {
      ensure_shape(*dbias, std::array<std::size_t, 1>{classes_});
      std::copy_n(layer_.bias().grad.data(), dbias->size(), dbias->data());
    }
    return loss;
  }

  /// Weights `[classes, features]` acting on standardised inputs (the layer's parameter: `.value`,
  /// `.grad`).
  parameter<T>& weight() { return layer_.weight(); }
  /// Bias `[classes]`.
  parameter<T>& bias() { return layer_.bias(); }
  /// Per-feature mean `[features]` subtracted before the weights (zeros until `fit`).
  const tensor1<T>& mean() const { return mean_; }
  /// Per-feature 1 / std `[features]` applied before the weights (ones until `fit`).
  const tensor1<T>& inverse_std() const { return inv_std_; }

 private:
  static constexpr std::size_t row_block = 4096;

  static linear<T> make_layer(std::size_t features, std::size_t classes) {
    if (features == 0 || classes == 0)
      throw config_error("linear_probe: expected features > 0 and classes > 0, got " +
                         std::to_string(features) + " and " + std::to_string(classes));
    rng unused(0);  // the weights are zeroed: the probe starts from W = 0, b = 0
    return linear<T>({.in_features = features, .out_features = classes, .bias = true}, unused);
  }

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

  /// The objective of the standardised rows in `z_` `[1, n, features]` with labels `y` (all in
  /// range); overwrites the layer's gradients with its gradient.
  double gradients(const std::vector<int>& y) {
    const std::size_t n = y.size();
    layer_.forward(z_, scores_);
    ensure_shape(dscores_, scores_.shape());
    double loss = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T* row = scores_.data() + i * classes_;
      T* d = dscores_.data() + i * classes_;
      const T mx = *std::max_element(row, row + classes_);
      double sum = 0;
      for (std::size_t k = 0; k < classes_; ++k) sum += std::exp(static_cast<double>(row[k] - mx));
      const double lse = static_cast<double>(mx) + std::log(sum);
      loss += lse - static_cast<double>(row[y[i]]);
      // d loss / d scores = (softmax - onehot) / n.
      for (std::size_t k = 0; k < classes_; ++k)
        d[k] = static_cast<T>(std::exp(static_cast<double>(row[k]) - lse) / static_cast<double>(n));
      d[y[i]] = static_cast<T>(d[y[i]] - T(1) / static_cast<T>(n));
    }
    loss /= static_cast<double>(n);
    layer_.weight().zero_grad();
    layer_.bias().zero_grad();
    layer_.backward(z_, scores_, dscores_, nullptr);
    if (lambda_ != 0) {
      double squares = 0;
      const T* w = layer_.weight().value.data();
      T* g = layer_.weight().grad.data();
      for (std::size_t i = 0; i < layer_.weight().size(); ++i) {
        squares += static_cast<double>(w[i]) * static_cast<double>(w[i]);
        g[i] = static_cast<T>(g[i] + lambda_ * w[i]);
      }
      loss += 0.5 * lambda_ * squares;
    }
    return loss;
  }

  /// lambda for n labelled rows: weight_decay + inverse_c / n.
  double penalty(std::size_t n) const { return opt_.weight_decay + opt_.inverse_c / static_cast<double>(n); }

  options opt_;
  std::size_t features_, classes_;
  linear<T> layer_;
  tensor1<T> mean_, inv_std_;
  tensor3<T> z_, scores_, dscores_;  // standardised rows [1, n, features], scores and their gradient
  double lambda_ = 0;                // the L2 strength of the objective being trained or evaluated
};

}  // namespace cpc
