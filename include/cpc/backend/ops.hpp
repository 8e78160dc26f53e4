#pragma once
/// The op layer: what layers, losses, encoders, autoregressors and optimisers call. Each op is a
/// function template on the backend tag (declared in backend/op/<family>.hpp with its argument
/// struct and shapes); its kernels live in backend/<backend>/<family>.hpp as overloads of
/// `run(<backend tag>, args...)`. Including this header brings in the host backends (cpu and
/// reference); a device backend's kernels come from its own headers.
///
/// Families:
///   blas       gemm, add_row_vector, sum_rows, axpby, fill, copy
///   recurrent  rnn_cell_forward, rnn_cell_backward, recurrent_forward, recurrent_backward
#include "cpc/backend/cpu.hpp"
#include "cpc/backend/dispatch.hpp"
#include "cpc/backend/op/blas.hpp"
#include "cpc/backend/op/recurrent.hpp"
#include "cpc/backend/reference.hpp"
#include "cpc/backend/storage.hpp"
