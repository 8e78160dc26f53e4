#pragma once
/// Gradient clipping by global L2 norm and finiteness checks of gradients.
#include <cmath>
#include <cstddef>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/threads.hpp"
#include "cpc/optim/optimizer.hpp"

namespace cpc {

/// L2 norm over all gradients together, accumulated in double over fixed chunks (deterministic
/// for any thread count). Errors: `cpc::shape_error` when a gradient's shape differs from its value's.
template <class T>
double gradient_norm(const named_parameter_list<T>& params) {
  check_parameter_list("gradient_norm", params);
  const auto chunks = make_parameter_chunks(params, optimizer_chunk_size);
  std::vector<double> partial(chunks.size(), 0.0);
  parallel_for(0, chunks.size(), [&](std::size_t c) {
    const auto& ch = chunks[c];
    const T* g = params[ch.param].second->grad.data() + ch.begin;
    double s = 0;
    for (std::size_t i = 0; i < ch.count; ++i) s += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    partial[c] = s;
  });
  double sum = 0;
  for (double s : partial) sum += s;
  return std::sqrt(sum);
}

/// Scales every gradient by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the L2
/// norm over all gradients together, accumulated in double over fixed chunks (deterministic for
/// any thread count). Returns total_norm (before clipping). Like torch with
/// error_if_nonfinite=False, a NaN/Inf norm is not an error here: the gradients are scaled by the
/// resulting NaN/0 factor; check with `check_finite_gradients` first when that matters.
/// Errors: `cpc::config_error` when max_norm is negative or NaN; `cpc::shape_error` when a
/// gradient's shape differs from its value's.
/// Source: torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2).
template <class T>
double clip_grad_norm(const named_parameter_list<T>& params, double max_norm) {
  if (!(max_norm >= 0))
    throw config_error("clip_grad_norm: expected max_norm >= 0, got " + std::to_string(max_norm));
  const double total_norm = gradient_norm(params);
  const auto chunks = make_parameter_chunks(params, optimizer_chunk_size);
  const double coef = max_norm / (total_norm + 1e-6);
  if (std::isnan(coef) || coef < 1.0) {
    const T scale = static_cast<T>(coef);
    parallel_for(0, chunks.size(), [&](std::size_t c) {
      const auto& ch = chunks[c];
      T* g = params[ch.param].second->grad.data() + ch.begin;
      for (std::size_t i = 0; i < ch.count; ++i) g[i] *= scale;
    });
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
template <class T>
nonfinite_location find_nonfinite_gradient(const named_parameter_list<T>& params) {
  check_parameter_list("find_nonfinite_gradient", params);
  const auto chunks = make_parameter_chunks(params, optimizer_chunk_size);
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> first(chunks.size(), none);
  parallel_for(0, chunks.size(), [&](std::size_t c) {
    const auto& ch = chunks[c];
    const T* g = params[ch.param].second->grad.data() + ch.begin;
    for (std::size_t i = 0; i < ch.count; ++i)
      if (!std::isfinite(g[i])) {
        first[c] = ch.begin + i;
        return;
      }
  });
  for (std::size_t c = 0; c < chunks.size(); ++c)
    if (first[c] != none) return {true, chunks[c].param, first[c]};
  return {};
}

/// Whether every gradient element is finite.
/// Errors: `cpc::shape_error` when a gradient's shape differs from its value's.
template <class T>
bool all_finite(const named_parameter_list<T>& params) {
  return !find_nonfinite_gradient(params).found;
}

/// Throws when a gradient holds a NaN or Inf, so a bad step is never applied.
/// Errors: `cpc::numeric_error` "non-finite gradient in parameter '<name>' at element <i> (nan)"
/// naming the first such parameter in list order; `cpc::shape_error` as `all_finite`.
template <class T>
void check_finite_gradients(const named_parameter_list<T>& params) {
  const auto loc = find_nonfinite_gradient(params);
  if (!loc.found) return;
  const auto& [name, p] = params[loc.param];
  std::ostringstream os;
  os << "non-finite gradient in parameter '" << name << "' at element " << loc.element << " ("
     << p->grad.data()[loc.element] << ")";
  throw numeric_error(os.str());
}

}  // namespace cpc
