#pragma once
/// Sentence features for the text probes (van den Oord et al. 2018, section 3.3, Table 3): frozen
/// sentence latents of a text model, and the bag-of-words baseline (TF-IDF over the same subword
/// vocabulary), scored by the same linear probe.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/eval/linear_probe.hpp"

namespace cpc {

/// TF-IDF bag-of-words vectors over token ids, as scikit-learn's TfidfVectorizer with its defaults
/// (smooth_idf, norm "l2", raw counts): x[i, v] = count_i(v) * idf(v), idf(v) = ln((1 + n) / (1 +
/// df(v))) + 1 with n documents and df(v) documents containing v in the fitted rows; each row is
/// then divided by its Euclidean norm (an empty row stays 0). Shapes: `[rows, vocabulary]`.
/// Errors: `cpc::config_error` for vocabulary 0 or an id outside [0, vocabulary).
class tfidf {
 public:
  /// Learns idf from `rows` of `tokens` (e.g. the probe's training rows).
  tfidf(const std::vector<std::vector<std::int32_t>>& tokens, std::span<const std::size_t> rows,
        std::size_t vocabulary)
      : idf_(vocabulary, 0.0) {
    if (vocabulary == 0) throw config_error("tfidf: expected vocabulary > 0");
    std::vector<std::size_t> df(vocabulary, 0), seen(vocabulary, SIZE_MAX);
    for (std::size_t r : rows)
      for (std::int32_t id : tokens.at(r)) {
        check(id);
        if (seen[static_cast<std::size_t>(id)] != r) {
          seen[static_cast<std::size_t>(id)] = r;
          ++df[static_cast<std::size_t>(id)];
        }
      }
    const double n = static_cast<double>(rows.size());
    for (std::size_t v = 0; v < vocabulary; ++v)
      idf_[v] = std::log((1.0 + n) / (1.0 + static_cast<double>(df[v]))) + 1.0;
  }

  /// The vectors of `rows` `[rows.size(), vocabulary]`.
  tensor2<float> transform(const std::vector<std::vector<std::int32_t>>& tokens,
                           std::span<const std::size_t> rows) const {
    const std::size_t V = idf_.size();
    tensor2<float> x = xt::zeros<float>({rows.size(), V});
    std::vector<double> row(V, 0.0);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::fill(row.begin(), row.end(), 0.0);
      for (std::int32_t id : tokens.at(rows[i])) {
        check(id);
        row[static_cast<std::size_t>(id)] += idf_[static_cast<std::size_t>(id)];
      }
      double norm = 0;
      for (double v : row) norm += v * v;
      norm = std::sqrt(norm);
      if (norm > 0)
        for (std::size_t v = 0; v < V; ++v) x(i, v) = static_cast<float>(row[v] / norm);
    }
    return x;
  }

  /// idf per id `[vocabulary]`.
  const std::vector<double>& idf() const { return idf_; }

 private:
  void check(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= idf_.size())
      throw config_error("tfidf: expected token ids in [0, " + std::to_string(idf_.size()) + "), got " +
                         std::to_string(id));
  }
  std::vector<double> idf_;
};

/// Frozen sentence latents `[rows.size(), latent]` of a text model (`cpc::text_model`): each
/// sentence encoded alone (ids `[n, 1, L]`, cut to `max_tokens`) by `model.encode_latents`, in
/// chunks of `chunk` sentences. Latents do not depend on the chunk (padding is masked).
template <class Model>
tensor2<float> encode_sentences(Model& model, const std::vector<std::vector<std::int32_t>>& tokens,
                                std::span<const std::size_t> rows, std::size_t max_tokens,
                                std::size_t chunk = 512) {
  tensor2<float> out;
  tensor3<float> z;
  for (std::size_t begin = 0; begin < rows.size(); begin += chunk) {
    const std::size_t n = std::min(chunk, rows.size() - begin);
    std::size_t L = 1;
    for (std::size_t i = 0; i < n; ++i)
      L = std::max(L, std::min(max_tokens, tokens.at(rows[begin + i]).size()));
    tensor3<std::int32_t> ids = xt::zeros<std::int32_t>({n, std::size_t{1}, L});
    for (std::size_t i = 0; i < n; ++i) {
      const auto& t = tokens[rows[begin + i]];
      std::copy_n(t.begin(), std::min(L, t.size()), &ids(i, 0, 0));
    }
    model.encode_latents(ids, z);
    if (begin == 0) out = xt::zeros<float>({rows.size(), z.shape()[2]});
    std::copy(z.data(), z.data() + z.size(), &out(begin, 0));
  }
  return out;
}

/// The text probes' protocol: the speech probes' (README "Probe protocol"): a softmax linear
/// classifier on standardised frozen features, Adam 1e-2 annealed to 0 on a cosine, batch 256,
/// seed 7, at least 20 epochs and 4000 updates, scikit-learn's default L2 penalty (C = 1); fitted
/// on the train split, scored on the fixed test split (the paper: logistic regression on frozen
/// sentence embeddings).
inline linear_probe<float>::options text_probe_options() {
  return {.epochs = 20,
          .min_updates = 4000,
          .learning_rate = 1e-2,
          .batch_size = 256,
          .inverse_c = 1.0,
          .seed = 7};
}

/// Test accuracy of a probe fitted on (xtr, ytr) and scored on (xte, yte) with `classes` classes.
/// Errors: the probe's (`cpc::shape_error`, `cpc::config_error`).
inline double probe_accuracy(const tensor2<float>& xtr, std::span<const int> ytr, const tensor2<float>& xte,
                             std::span<const int> yte, std::size_t classes,
                             const linear_probe<float>::options& o = text_probe_options()) {
  linear_probe<float> p(xtr.shape()[1], classes, o);
  p.fit(xtr, ytr);
  return p.accuracy(xte, yte);
}

}  // namespace cpc
