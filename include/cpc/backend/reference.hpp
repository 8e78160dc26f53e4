#pragma once
/// Every kernel of the reference backend (the test oracle).
#include "cpc/backend/reference/blas.hpp"
#include "cpc/backend/reference/conv2d.hpp"
#include "cpc/backend/reference/patches.hpp"
#include "cpc/backend/reference/pointwise.hpp"
#include "cpc/backend/tags.hpp"
