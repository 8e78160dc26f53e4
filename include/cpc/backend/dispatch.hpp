#pragma once
/// How an op finds its kernel. Every op in backend/op/ is a function template on the backend tag
/// whose body is `CPC_DISPATCH("name", Backend, args...)`: it calls `run(Backend{}, args...)`,
/// found by argument-dependent lookup among the overloads that backend folders declare
/// (backend/cpu/*.hpp, backend/reference/*.hpp; a new backend adds its own folder). An op with no
/// kernel on the backend stops compilation with one static_assert naming the op; the compiler's
/// instantiation note names the backend (e.g. "[with Backend = cpc::cuda]").
/// Source: tag dispatch with a `dependent_false` assert, as CUTLASS does for unspecialised templates.
#include "cpc/backend/tags.hpp"

/// Calls `run(Backend{}, ...)` or fails with "cpc: op '<name>' has no kernel on this backend"
/// (the note names the backend: "'cpc::no_kernel<cpc::cuda>' evaluates to false"); on a backend
/// that is unavailable altogether, only `report_unavailable`'s one message. A macro only because the
/// op's name must be spliced into the static_assert's string literal.
#define CPC_DISPATCH(op_name, Backend, ...)                                                     \
  do {                                                                                          \
    if constexpr (requires { run(Backend{}, __VA_ARGS__); })                                    \
      run(Backend{}, __VA_ARGS__);                                                              \
    else if constexpr (!::cpc::backend_available<Backend>)                                      \
      static_assert(::cpc::report_unavailable<Backend>());                                      \
    else                                                                                        \
      static_assert(::cpc::no_kernel<Backend>, "cpc: op '" op_name                              \
                                               "' has no kernel on this "                       \
                                               "backend - declare run(Backend, ...) for it in " \
                                               "backend/<backend>/ (see backend/ops.hpp)");     \
  } while (false)

namespace cpc {
/// `false` for every backend; its name in the compiler's note says which backend lacks the op.
template <class Backend>
inline constexpr bool no_kernel = false;
}  // namespace cpc
