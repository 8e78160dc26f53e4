#pragma once
/// Every kernel of the reference backend (the test oracle).
#include "cpc/backend/reference/blas.hpp"
#include "cpc/backend/reference/recurrent.hpp"
#include "cpc/backend/tags.hpp"
