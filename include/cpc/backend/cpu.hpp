#pragma once
/// Every kernel of the cpu backend. Add a family's header here when
/// a new op family gets cpu kernels.
#include "cpc/backend/cpu/blas.hpp"
#include "cpc/backend/cpu/recurrent.hpp"
#include "cpc/backend/tags.hpp"
