// corpus_check: checks that a corpus's phone labels line up with its audio.
//
// Usage: corpus_check CORPUS_DIR [--max-shift N] [--epochs N] [--quiet]
//
// For every speaker and every shift d = -N..N frames it measures the frame accuracy of a linear
// phone probe (cpc::linear_probe on 40 log mel energies per 10 ms frame, cpc::audio_features)
// whose labels are shifted by d, by 5-fold cross-validation over the speaker's utterances
// (utterance k is in fold k % 5; at most 12,000 training frames per probe, evenly subsampled), so
// that every frame of the speaker is scored once. Shift d pairs feature frame f with label frame
// f + d: a peak at d > 0 means the labels are late (they describe audio d frames earlier), d < 0
// that they are early. The same frames (those with every shifted label defined) serve every
// shift. Prints accuracies in percent and the sub-frame peak (a parabola through the best shift and
// its neighbours, in ms), and exits with status 1, naming the speakers, when some speaker's
// accuracy does not peak at d = 0; status 2 for bad arguments or an unreadable corpus.
// Used by scripts/make-corpus.sh.
#include <cpc/data/corpus.hpp>
#include <cpc/eval/features.hpp>
#include <cpc/eval/linear_probe.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct frames {
  std::vector<float> x;  // [n, dims]
  std::vector<int> y;    // [n]
};

/// Appends the frames of one utterance whose labels at every shift in [-max, max] are known,
/// with the label at shift d.
void append(const cpc::tensor2<float>& feats, const std::vector<std::int32_t>& labels, int d, int max_shift,
            frames& out) {
  const auto nf = static_cast<int>(std::min<std::size_t>(feats.shape()[0], labels.size()));
  const std::size_t dims = feats.shape()[1];
  for (int f = max_shift; f + max_shift < nf; ++f) {
    bool known = true;
    for (int s = -max_shift; s <= max_shift; ++s)
      known = known && labels[static_cast<std::size_t>(f + s)] >= 0;
    if (!known) continue;
    const float* row = feats.data() + static_cast<std::size_t>(f) * dims;
    out.x.insert(out.x.end(), row, row + dims);
    out.y.push_back(labels[static_cast<std::size_t>(f + d)]);
  }
}

/// Where a parabola through the best shift's accuracy and its neighbours peaks, in ms (10 ms per frame):
/// an estimate of how late the labels are (negative: early).
double sub_frame_peak_ms(const std::vector<double>& acc) {
  const auto best = static_cast<std::size_t>(std::max_element(acc.begin(), acc.end()) - acc.begin());
  const double centre = static_cast<double>(best) - static_cast<double>(acc.size() / 2);
  if (best == 0 || best + 1 == acc.size()) return 10.0 * centre;
  const double a = acc[best - 1], b = acc[best], c = acc[best + 1];
  const double curvature = a - 2 * b + c;
  return 10.0 * (centre + (curvature < 0 ? 0.5 * (a - c) / curvature : 0.0));
}

cpc::tensor2<float> as_tensor(const frames& f, std::size_t dims) {
  cpc::tensor2<float> t = cpc::tensor2<float>::from_shape({f.y.size(), dims});
  std::copy(f.x.begin(), f.x.end(), t.begin());
  return t;
}

}  // namespace

constexpr std::size_t max_folds = 5;      // cross-validation folds per speaker
constexpr std::size_t max_train = 12000;  // training frames per probe (evenly subsampled)

int main(int argc, char** argv) {
  std::string root;
  int max_shift = 3;
  std::size_t epochs = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--max-shift" && i + 1 < argc)
      max_shift = std::atoi(argv[++i]);
    else if (a == "--epochs" && i + 1 < argc)
      epochs = static_cast<std::size_t>(std::atoi(argv[++i]));
    else if (!a.empty() && a[0] != '-' && root.empty())
      root = a;
    else {
      std::cerr << "usage: corpus_check CORPUS_DIR [--max-shift N] [--epochs N]\n";
      return 2;
    }
  }
  if (root.empty() || max_shift < 1 || epochs < 1) {
    std::cerr << "usage: corpus_check CORPUS_DIR [--max-shift N] [--epochs N]\n";
    return 2;
  }
  try {
    cpc::speech_corpus corpus(root);
    if (!corpus.has_alignments()) {
      std::cerr << "corpus_check: " << root << " has no alignments.txt\n";
      return 2;
    }
    // Features of every utterance, in parallel (one feature object per task).
    std::vector<cpc::tensor2<float>> feats(corpus.size());
    cpc::parallel_for(0, corpus.size(), [&](std::size_t i) {
      cpc::audio_features extractor;
      extractor.log_mel_spectrum(corpus[i].samples, feats[i]);
    });
    const std::size_t dims = 40;
    const std::size_t num_speakers = corpus.speakers().size();
    const int shifts = 2 * max_shift + 1;
    std::vector<std::vector<std::size_t>> by_speaker(num_speakers);
    for (std::size_t i = 0; i < corpus.size(); ++i) by_speaker[corpus[i].speaker].push_back(i);
    // One job per (speaker, shift, fold); hits and counts are summed over folds afterwards.
    const std::size_t jobs = num_speakers * static_cast<std::size_t>(shifts) * max_folds;
    std::vector<std::size_t> hits(jobs, 0), counts(jobs, 0);
    cpc::parallel_for(0, jobs, [&](std::size_t job) {
      const std::size_t s = job / (static_cast<std::size_t>(shifts) * max_folds);
      const int d = static_cast<int>(job / max_folds % static_cast<std::size_t>(shifts)) - max_shift;
      const std::size_t fold = job % max_folds;
      const auto& utts = by_speaker[s];
      const std::size_t folds = std::min(max_folds, utts.size());
      if (fold >= folds) return;
      frames train, test;
      for (std::size_t k = 0; k < utts.size(); ++k)
        append(feats[utts[k]], corpus[utts[k]].labels, d, max_shift, k % folds == fold ? test : train);
      if (train.y.empty() || test.y.empty()) return;
      // At most max_train frames, evenly spaced, keep the cost bounded on large corpora.
      const std::size_t stride = (train.y.size() + max_train - 1) / max_train;
      if (stride > 1) {
        frames kept;
        for (std::size_t r = 0; r < train.y.size(); r += stride) {
          kept.x.insert(kept.x.end(), train.x.begin() + static_cast<std::ptrdiff_t>(r * dims),
                        train.x.begin() + static_cast<std::ptrdiff_t>((r + 1) * dims));
          kept.y.push_back(train.y[r]);
        }
        train = std::move(kept);
      }
      cpc::linear_probe<float> probe(dims, corpus.num_phones(),
                                     {.epochs = epochs, .learning_rate = 1e-2, .batch_size = 256, .seed = 1});
      probe.fit(as_tensor(train, dims), train.y);
      const auto pred = probe.predict(as_tensor(test, dims));
      for (std::size_t r = 0; r < pred.size(); ++r) hits[job] += pred[r] == test.y[r];
      counts[job] = pred.size();
    });
    std::vector<std::vector<double>> acc(num_speakers,
                                         std::vector<double>(static_cast<std::size_t>(shifts), 0.0));
    std::vector<std::size_t> test_frames(num_speakers, 0);
    for (std::size_t s = 0; s < num_speakers; ++s)
      for (std::size_t k = 0; k < static_cast<std::size_t>(shifts); ++k) {
        std::size_t h = 0, n = 0;
        for (std::size_t f = 0; f < max_folds; ++f) {
          h += hits[(s * static_cast<std::size_t>(shifts) + k) * max_folds + f];
          n += counts[(s * static_cast<std::size_t>(shifts) + k) * max_folds + f];
        }
        acc[s][k] = n ? static_cast<double>(h) / static_cast<double>(n) : 0.0;
        test_frames[s] = n;
      }

    std::printf(
        "corpus_check: frame phone accuracy (%%) of a linear probe on log mel features, labels shifted by d "
        "frames\n%-14s",
        "speaker");
    for (int d = -max_shift; d <= max_shift; ++d) std::printf(" %+6d", d);
    std::printf("  frames  offset_ms  peak\n");
    std::vector<std::string> bad;
    std::vector<double> mean(static_cast<std::size_t>(shifts), 0.0);
    for (std::size_t s = 0; s < num_speakers; ++s) {
      std::printf("%-14s", corpus.speakers()[s].c_str());
      int best = 0;
      for (int k = 0; k < shifts; ++k) {
        std::printf(" %6.1f", 100 * acc[s][static_cast<std::size_t>(k)]);
        mean[static_cast<std::size_t>(k)] +=
            acc[s][static_cast<std::size_t>(k)] / static_cast<double>(num_speakers);
        if (acc[s][static_cast<std::size_t>(k)] > acc[s][static_cast<std::size_t>(best)]) best = k;
      }
      const int peak = best - max_shift;
      std::printf(" %7zu  %+9.1f  %+d%s\n", test_frames[s], sub_frame_peak_ms(acc[s]), peak,
                  peak == 0 ? " ok" : " MISALIGNED");
      if (peak != 0) bad.push_back(corpus.speakers()[s] + " (peak at " + std::to_string(peak) + ")");
    }
    std::printf("%-14s", "mean");
    for (double m : mean) std::printf(" %6.1f", 100 * m);
    std::printf("          %+9.1f\n", sub_frame_peak_ms(mean));
    if (!bad.empty()) {
      std::fprintf(stderr, "corpus_check: labels of %zu speaker(s) do not peak at shift 0:", bad.size());
      for (const auto& b : bad) std::fprintf(stderr, " %s", b.c_str());
      std::fprintf(stderr, "\n");
      return 1;
    }
    std::printf("corpus_check: every speaker's labels peak at shift 0\n");
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "corpus_check: " << e.what() << '\n';
    return 2;
  }
}
