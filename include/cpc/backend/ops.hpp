#pragma once
/// The op layer: what layers, losses, encoders, autoregressors and optimisers call. Each op is a
/// function template on the backend tag (declared in backend/op/<family>.hpp with its argument
/// struct and shapes); its kernels live in backend/<backend>/<family>.hpp as overloads of
/// `run(<backend tag>, args...)`. Including this header brings in the host backends (cpu and
/// reference); a device backend's kernels come from its own headers.
///
/// Families:
///   blas        gemm, add_row_vector, sum_rows, axpby, fill, copy
///   conv1d      conv1d_forward, conv1d_backward_params, conv1d_backward_input
///   conv2d      conv2d_forward, conv2d_backward, zero_kernel_rows
///   patches     extract_patches, patch_mean_pool, patch_mean_pool_backward
///   norm        layer_norm_forward, layer_norm_backward
///   activation  relu_forward, relu_backward, add_where_positive
///   attention   causal_attention_forward, causal_attention_backward
///   recurrent   rnn_cell_forward, rnn_cell_backward, recurrent_forward, recurrent_backward
///   info_nce    info_nce_anchor_terms, info_nce_scatter_dz, transpose_grid
///   optim       adam_update, sgd_update, rmsprop_update, sum_squares, find_nonfinite
///   text        embedding_forward, embedding_backward, masked_mean_pool, masked_mean_pool_backward
#include "cpc/backend/cpu.hpp"
#include "cpc/backend/dispatch.hpp"
#include "cpc/backend/op/activation.hpp"
#include "cpc/backend/op/attention.hpp"
#include "cpc/backend/op/blas.hpp"
#include "cpc/backend/op/conv1d.hpp"
#include "cpc/backend/op/conv2d.hpp"
#include "cpc/backend/op/info_nce.hpp"
#include "cpc/backend/op/norm.hpp"
#include "cpc/backend/op/optim.hpp"
#include "cpc/backend/op/patches.hpp"
#include "cpc/backend/op/recurrent.hpp"
#include "cpc/backend/op/text.hpp"
#include "cpc/backend/reference.hpp"
#include "cpc/backend/storage.hpp"
