#pragma once
/// The batches models train on: one type per input kind, filled by the data samplers and taken
/// unchanged by the models (`compute_gradients`, `train_step`) and by `cpc::train`. A model names
/// its batch type as `Model::batch_type`; models still to come (text, reinforcement learning)
/// add theirs here. Source: issue 15 "one training path for every modality".
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpc/core/batch_info.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// A batch of audio windows, as `cpc::window_sampler` yields it and `cpc::model` trains on it.
/// B rows of W samples at 16 kHz; F frames per row (W / 160 for the paper's encoder, one frame
/// per 10 ms). Frame f of row b covers samples [160 f, 160 (f + 1)) of the row, i.e. samples
/// [starts[b] + 160 f, ...) of utterance `utterances[b]`.
/// Units: `info.lengths` in frames (the frames of the row that lie wholly inside its utterance;
/// empty = every row has F valid frames), `info.speakers` as `std::int64_t` ids (the corpus
/// speaker index; empty = unknown). The side fields (`labels`, `utterances`, `starts`) are filled
/// by corpus samplers and ignored by the model; a batch made by hand may leave them empty.
template <class T = float>
struct audio_batch {
  tensor2<T> audio;  ///< `[B, W]` samples (after the sampler's input gain); zeros past a padded row's end
  batch_info info;   ///< valid frames and speaker id per row (see above)
  tensor2<std::int32_t> labels;         ///< `[B, F]` phone class per frame, -1 = unknown or padding
  std::vector<std::size_t> utterances;  ///< `[B]` corpus index of each row's utterance
  std::vector<std::size_t> starts;  ///< `[B]` first sample of each row in its utterance (a multiple of 160)
  /// Number of rows B.
  std::size_t size() const { return audio.shape()[0]; }
};

/// A batch of images, as `cpc::image_sampler` yields it and `cpc::image_model` trains on it.
/// `indices` (optional) names each row's image in its data set.
template <class T = float>
struct image_batch {
  tensor4<T> images;                 ///< `[B, H, W, C]`, e.g. pixel / 255
  std::vector<std::size_t> indices;  ///< `[B]` index of each image in the data set it was drawn from
  /// Number of rows B.
  std::size_t size() const { return images.shape()[0]; }
};

/// A batch of text, as `cpc::text_sampler` yields it and `cpc::text_model` trains on it: B rows of
/// S consecutive sentences of one document each, every sentence L token ids (padded with the
/// padding id after its last token). `info.lengths[b]`: the sentences of row b that are real
/// (sentences s >= lengths[b] are empty slots: never an anchor, target or negative); empty = all S.
/// `documents` and `starts` (optional) name each row's document and first sentence in it.
struct text_batch {
  tensor3<std::int32_t> ids;           ///< `[B, S, L]` token ids
  batch_info info;                     ///< real sentences per row (see above)
  std::vector<std::size_t> documents;  ///< `[B]` document index of each row
  std::vector<std::size_t> starts;     ///< `[B]` first sentence of each row in its document
  /// Number of rows B.
  std::size_t size() const { return ids.shape()[0]; }
};

}  // namespace cpc
