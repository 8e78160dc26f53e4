#pragma once
/// Every kernel of the cpu backend. Add a family's header here when
/// a new op family gets cpu kernels.
#include "cpc/backend/cpu/activation.hpp"
#include "cpc/backend/cpu/attention.hpp"
#include "cpc/backend/cpu/blas.hpp"
#include "cpc/backend/cpu/conv1d.hpp"
#include "cpc/backend/cpu/conv2d.hpp"
#include "cpc/backend/cpu/info_nce.hpp"
#include "cpc/backend/cpu/norm.hpp"
#include "cpc/backend/cpu/optim.hpp"
#include "cpc/backend/cpu/patches.hpp"
#include "cpc/backend/cpu/recurrent.hpp"
#include "cpc/backend/cpu/text.hpp"
#include "cpc/backend/tags.hpp"
