#pragma once
/// Streaming: contexts c_t from audio that arrives in chunks, equal to one pass over the whole
/// signal. Source: the paper's g_ar summarises z_<=t (section 2); streaming carries its state.
#include <algorithm>
#include <cstddef>
#include <string>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"

#include <xtensor/xview.hpp>

namespace cpc {

/// Feeds a `cpc::model` audio chunk by chunk and returns the contexts of the frames that have
/// become final. A frame is final once every sample of its receptive field has arrived (about
/// 2 frames of look-ahead with the paper's encoder); `finish()` returns the rest, using the
/// encoder's zero padding at the end exactly as one pass does. Internally the samples from the
/// receptive field of the next unfinished frame on are kept (cut at a multiple of the encoder's
/// total stride, so the frame grid stays aligned), re-encoded when enough new samples arrived, and
/// the autoregressor's state is carried. The concatenated outputs equal `model.encode` on the
/// whole signal (bit-identical: the cpu kernels compute a frame from its inputs alone, whatever
/// its position, the frames around it or the task it falls in; tests/unit/test_streaming.cpp
/// checks the paper preset). Shapes: chunks `[batch, n]` samples (any n >= 0, the same batch
/// every time), outputs `[batch, new frames, context]`. Errors: `cpc::shape_error` when the batch
/// size changes; `cpc::error` when used after `finish()`. Holds a reference: the model must outlive it
/// and should not be used for anything else while streaming (it reuses the model's buffers).
template <class Model>
class context_stream {
  using T = typename Model::value_type;

 public:
  explicit context_stream(Model& m) : m_(m) {}

  /// Appends `chunk` `[B, n]`; `c` receives the contexts of the frames that became final
  /// (possibly none: `[B, 0, context]`).
  void push(const tensor2<T>& chunk, tensor3<T>& c) {
    if (finished_) throw error("context_stream::push: called after finish()");
    const std::size_t batch = chunk.shape()[0], n = chunk.shape()[1];
    if (buf_.size() == 0) {
      buf_ = tensor2<T>::from_shape({batch, 0});
    } else if (batch != buf_.shape()[0]) {
      throw shape_error("context_stream::push chunk: expected [" + std::to_string(buf_.shape()[0]) +
                        ", *], got " + shape_string(chunk.shape()));
    }
    tensor2<T> grown = tensor2<T>::from_shape({batch, buf_.shape()[1] + n});
    xt::view(grown, xt::all(), xt::range(0, buf_.shape()[1])) = buf_;
    xt::view(grown, xt::all(), xt::range(buf_.shape()[1], buf_.shape()[1] + n)) = chunk;
    buf_ = std::move(grown);
    seen_ += n;
    // Last final frame: its receptive field ends inside what has arrived.
    std::size_t end = next_;
    while (m_.encoder().receptive_field(end).second < static_cast<std::ptrdiff_t>(seen_)) ++end;
    emit(end, c);
  }

  /// Ends the stream; `c` receives the remaining frames, computed with the encoder's padding at
  /// the end of the signal (as `model.encode` on the whole signal).
  void finish(tensor3<T>& c) {
    if (finished_) throw error("context_stream::finish: called twice");
    finished_ = true;
    emit(m_.frames(seen_), c);
  }

 private:
  // Encodes the kept samples, passes frames [next_, end) through the autoregressor and drops
  // samples no later frame needs.
  void emit(std::size_t end, tensor3<T>& c) {
    const std::size_t batch = buf_.shape()[0], ctx = m_.config().loss.context_dim;
    if (end <= next_ || buf_.shape()[1] < m_.encoder().min_samples()) {
      c = tensor3<T>::from_shape({batch, 0, ctx});
      return;
    }
    const std::size_t stride = m_.encoder().total_stride(), first = start_ / stride;
    m_.encoder().forward(buf_, z_);
    const std::size_t have = z_.shape()[1];
    const std::size_t stop = std::min(end, first + have);
    tensor3<T> z = xt::view(z_, xt::all(), xt::range(next_ - first, stop - first), xt::all());
    m_.contexts(z, c, state_);
    next_ = stop;
    // Keep samples from the receptive field of frame next_ on, cut down to a multiple of the stride.
    const std::ptrdiff_t lo = m_.encoder().receptive_field(next_).first;
    const std::size_t keep_from = lo <= 0 ? 0 : static_cast<std::size_t>(lo) / stride * stride;
    if (keep_from > start_) {
      const std::size_t drop = keep_from - start_;
      buf_ = xt::view(buf_, xt::all(), xt::range(drop, buf_.shape()[1]));
      start_ = keep_from;
    }
  }

  Model& m_;
  tensor2<T> buf_;         // samples [start_, seen_)
  tensor3<T> z_, state_;   // latents of the last encode; the autoregressor's carried state
  std::size_t start_ = 0;  // absolute index of buf_'s first sample (a multiple of the stride)
  std::size_t seen_ = 0;   // samples received
  std::size_t next_ = 0;   // first frame not yet returned
  bool finished_ = false;
};

}  // namespace cpc
