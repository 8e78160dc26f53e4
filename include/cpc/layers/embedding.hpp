#pragma once
/// Token embedding: a learned lookup table from token ids to vectors (torch.nn.Embedding).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/init.hpp"

namespace cpc {

/// Sizes of `cpc::embedding`: `vocabulary` ids of `dim` channels; `padding` is the id whose row
/// is zero and gets no gradient (torch's padding_idx), or -1 for none.
struct embedding_options {
  std::size_t vocabulary = 0;
  std::size_t dim = 0;
  std::int64_t padding = -1;
};

/// A lookup table y[n, t, :] = weight[ids[n, t], :]. Shapes: ids `[N, L]` (int32) -> y
/// `[N, L, dim]`; weight `[vocabulary, dim]` ("weight", PyTorch's name and layout). Init: PyTorch's
/// N(0, 1), the padding row set to zero. The padding id's row stays zero: its output is zero and it
/// gets no gradient. Backward accumulates d weight (a scatter-add, summed in token order).
/// Errors: `cpc::config_error` for zero sizes or a padding id outside [-1, vocabulary);
/// `cpc::shape_error` for an id outside [0, vocabulary) (naming the id and its position) or a
/// gradient of the wrong shape. Source: torch.nn.Embedding(vocabulary, dim, padding_idx).
/// Kernels: backend/op/text.hpp.
template <class T, class Backend = cpu>
class embedding {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer sizes (`cpc::embedding_options`).
  using options = embedding_options;

  /// Builds the table and draws N(0, 1) weights from `gen`; the padding row is zero.
  embedding(options opt, rng& gen) : opt_(opt) {
    if (opt.vocabulary == 0 || opt.dim == 0)
      throw config_error("embedding: expected vocabulary > 0 and dim > 0, got " +
                         std::to_string(opt.vocabulary) + " and " + std::to_string(opt.dim));
    if (opt.padding < -1 || opt.padding >= static_cast<std::int64_t>(opt.vocabulary))
      throw config_error("embedding: expected a padding id in [-1, " + std::to_string(opt.vocabulary) +
                         "), got " + std::to_string(opt.padding));
    weight_ = parameter<T>({opt.vocabulary, opt.dim});
    init_normal(weight_, 1.0, gen);
    if (opt.padding >= 0)
      for (std::size_t c = 0; c < opt.dim; ++c)
        weight_.value(static_cast<std::size_t>(opt.padding), c) = T(0);
  }

  /// The options the layer was built with.
  const options& config() const { return opt_; }

  /// y = weight[ids]. Shapes: ids `[N, L]`, y resized to `[N, L, dim]`.
  /// Errors: `cpc::shape_error` for an id outside [0, vocabulary).
  void forward(const tensor2<std::int32_t>& ids, tensor3<T>& y) {
    check_ids("embedding forward", ids);
    ensure_shape(y, std::array<std::size_t, 3>{ids.shape()[0], ids.shape()[1], opt_.dim});
    ops::embedding_forward<Backend>(ops::embedding_forward_args<T>{.n = ids.size(),
                                                                   .dim = opt_.dim,
                                                                   .padding = opt_.padding,
                                                                   .ids = ids.data(),
                                                                   .table = weight_.value.data(),
                                                                   .y = y.data()});
  }

  /// Accumulates d weight from dy `[N, L, dim]` (the ids are the forward's; the padding row gets
  /// nothing). There is no input gradient: ids are integers.
  /// Errors: `cpc::shape_error` for a wrong dy shape or an id outside [0, vocabulary).
  void backward(const tensor2<std::int32_t>& ids, const tensor3<T>& dy) {
    check_ids("embedding backward", ids);
    check_shape("embedding backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(ids.shape()[0]), static_cast<std::ptrdiff_t>(ids.shape()[1]),
                 static_cast<std::ptrdiff_t>(opt_.dim)});
    ops::embedding_backward<Backend>(ops::embedding_backward_args<T>{.n = ids.size(),
                                                                     .dim = opt_.dim,
                                                                     .vocabulary = opt_.vocabulary,
                                                                     .padding = opt_.padding,
                                                                     .ids = ids.data(),
                                                                     .dy = dy.data(),
                                                                     .d_table = weight_.grad.data()});
  }

  /// Visits "weight" `[vocabulary, dim]`.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    f(join_name(prefix, "weight"), weight_);
  }

  /// The table `[vocabulary, dim]`.
  parameter<T>& weight() { return weight_; }

 private:
  void check_ids(std::string_view where, const tensor2<std::int32_t>& ids) const {
    const std::int32_t* p = ids.data();
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (p[i] < 0 || static_cast<std::size_t>(p[i]) >= opt_.vocabulary)
        throw shape_error(std::string(where) + ": expected token ids in [0, " +
                          std::to_string(opt_.vocabulary) + "), got " + std::to_string(p[i]) + " at [" +
                          std::to_string(i / ids.shape()[1]) + ", " + std::to_string(i % ids.shape()[1]) +
                          "]");
  }

  options opt_;
  parameter<T> weight_;
};

}  // namespace cpc
