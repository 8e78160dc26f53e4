#pragma once
/// The result of a contrastive loss evaluation, shared by every loss, model and the trainer.
/// Source: paper eq. 4 (InfoNCE); REFERENCE.md pitfall 9 (a vector of K accuracies).
#include <cstddef>
#include <vector>

namespace cpc {

/// What one InfoNCE evaluation measured. Vectors have K entries, entry k - 1 for step k.
/// `loss_per_step[k-1]`: mean over the step's terms of -log softmax(logits)[0];
/// `accuracy[k-1]`: fraction of those terms whose logit of the positive is strictly above every
/// negative's (ties count as wrong), over the same candidate axis as the loss;
/// `terms[k-1]`: number of (b, t) with t + k < length_b (B * (T - k) without padding).
/// A step without terms reports loss 0, accuracy 0. `chance` = 1 / (N + 1),
/// `log_candidates` = log(N + 1) (the loss of a model at chance).
struct info_nce_result {
  double loss = 0;
  std::vector<double> loss_per_step;
  std::vector<double> accuracy;
  std::vector<std::size_t> terms;
  double chance = 0;
  double log_candidates = 0;
};

}  // namespace cpc
