#pragma once
/// Every kernel body of the CUDA backend: the element-wise and per-row maths of each op, written
/// once as `CPC_HD` (`__host__ __device__` under nvcc) functions in plain C++, so that the device
/// kernels (backend/cuda/*.cuh) and host unit tests run the same code. Needs no CUDA toolkit.
#include "cpc/backend/cuda/body/activation.hpp"
#include "cpc/backend/cuda/body/blas.hpp"
#include "cpc/backend/cuda/body/conv1d.hpp"
#include "cpc/backend/cuda/body/conv2d.hpp"
#include "cpc/backend/cuda/body/info_nce.hpp"
#include "cpc/backend/cuda/body/norm.hpp"
#include "cpc/backend/cuda/body/optim.hpp"
#include "cpc/backend/cuda/body/recurrent.hpp"
#include "cpc/backend/cuda/hd.hpp"
