#pragma once
/// Every kernel of the reference backend (the test oracle).
#include "cpc/backend/reference/activation.hpp"
#include "cpc/backend/reference/attention.hpp"
#include "cpc/backend/reference/blas.hpp"
#include "cpc/backend/reference/conv1d.hpp"
#include "cpc/backend/reference/conv2d.hpp"
#include "cpc/backend/reference/info_nce.hpp"
#include "cpc/backend/reference/norm.hpp"
#include "cpc/backend/reference/optim.hpp"
#include "cpc/backend/reference/patches.hpp"
#include "cpc/backend/reference/recurrent.hpp"
#include "cpc/backend/reference/text.hpp"
#include "cpc/backend/tags.hpp"
