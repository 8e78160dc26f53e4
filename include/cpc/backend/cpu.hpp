#pragma once
/// Every kernel of the cpu backend. Add a family's header here when
/// a new op family gets cpu kernels.
#include "cpc/backend/cpu/blas.hpp"
#include "cpc/backend/cpu/conv2d.hpp"
#include "cpc/backend/cpu/patches.hpp"
#include "cpc/backend/cpu/pointwise.hpp"
#include "cpc/backend/tags.hpp"
