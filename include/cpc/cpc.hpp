#pragma once
/// Umbrella header: everything in cpc that needs no audio libraries.
#include "cpc/backend/tags.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"
#include "cpc/layers/linear.hpp"
