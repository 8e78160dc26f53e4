#pragma once
/// Gradient clipping by global L2 norm and finiteness checks of gradients.
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/optim/optimizer.hpp"

namespace cpc {

/// L2 norm over all gradients together, accumulated in double over fixed chunks of
/// `optimizer_chunk_size` scalars per parameter, combined in list order (deterministic for any
/// thread count). `Backend` is where the gradients live (the model's backend).
/// Errors: `cpc::shape_error` when a gradient's shape differs from its value's.
template <class T, class Backend = cpu>
double gradient_norm(const named_parameter_list<T>& params) {
  check_parameter_list("gradient_norm", params);
  std::vector<double> partial;
  double sum = 0;
  for (const auto& [name, p] : params) {
    partial.assign((p->size() + optimizer_chunk_size - 1) / optimizer_chunk_size, 0.0);
    ops::sum_squares<Backend>(ops::sum_squares_args<T>{
        .n = p->size(), .x = p->grad.data(), .chunk = optimizer_chunk_size, .partials = partial.data()});
    for (double s : partial) sum += s;
  }
  return std::sqrt(sum);
}

/// Scales every gradient by min(1, max_norm / (total_norm + 1e-6)), where total_norm is
/// `gradient_norm(params)`. Returns total_norm (before clipping). Like torch with
/// error_if_nonfinite=False, a NaN/Inf norm is not an error here: the gradients are scaled by the
/// resulting NaN/0 factor; check with `check_finite_gradients` first when that matters.
/// Errors: `cpc::config_error` when max_norm is negative or NaN; `cpc::shape_error` when a
/// gradient's shape differs from its value's.
/// Source: torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2).
template <class T, class Backend = cpu>
double clip_grad_norm(const named_parameter_list<T>& params, double max_norm) {
  if (!(max_norm >= 0))
    throw config_error("clip_grad_norm: expected max_norm >= 0, got " + std::to_string(max_norm));
  const double total_norm = gradient_norm<T, Backend>(params);
  const double coef = max_norm / (total_norm + 1e-6);
  if (std::isnan(coef) || coef < 1.0) {
    const T scale = static_cast<T>(coef);
    for (const auto& [name, p] : params)
      ops::axpby<Backend>(ops::axpby_args<T>{
          .n = p->size(), .alpha = scale, .x = p->grad.data(), .beta = T(0), .y = p->grad.data()});
  }
  return total_norm;
}

/// Where the first non-finite gradient element is, in list order.
struct nonfinite_location {
  bool found = false;
  std::size_t param = 0;    ///< index into the parameter list
  std::size_t element = 0;  ///< row-major element index within that parameter
};

/// Finds the first NaN/Inf gradient element (list order, then element order).
/// Errors: `cpc::shape_error` when a gradient's shape differs from its value's.
template <class T, class Backend = cpu>
nonfinite_location find_nonfinite_gradient(const named_parameter_list<T>& params) {
  check_parameter_list("find_nonfinite_gradient", params);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto* p = params[i].second;
    std::size_t first = 0;
    ops::find_nonfinite<Backend>(
        ops::find_nonfinite_args<T>{.n = p->size(), .x = p->grad.data(), .first = &first});
    if (first < p->size()) return {true, i, first};
  }
  return {};
}

/// Whether every gradient element is finite.
/// Errors: `cpc::shape_error` when a gradient's shape differs from its value's.
template <class T, class Backend = cpu>
bool all_finite(const named_parameter_list<T>& params) {
  return !find_nonfinite_gradient<T, Backend>(params).found;
}

/// Throws when a gradient holds a NaN or Inf, so a bad step is never applied.
/// Errors: `cpc::numeric_error` "non-finite gradient in parameter '<name>' at element <i> (nan)"
/// naming the first such parameter in list order; `cpc::shape_error` as `all_finite`.
template <class T, class Backend = cpu>
void check_finite_gradients(const named_parameter_list<T>& params) {
  const auto loc = find_nonfinite_gradient<T, Backend>(params);
  if (!loc.found) return;
  const auto& [name, p] = params[loc.param];
  std::ostringstream os;
  os << "non-finite gradient in parameter '" << name << "' at element " << loc.element << " ("
     << p->grad.data()[loc.element] << ")";
  throw numeric_error(os.str());
}

}  // namespace cpc
