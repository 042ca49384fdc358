// Vectorizable transcendental functions for OpenMP simd loops; the definitions are shared
// with the CUDA kernels (core/math/activation.h).
#pragma once
#include "core/math/activation.h"

namespace zt::cpu {

using math::fast_exp;
using math::fast_sigmoid;
using math::fast_tanh;

}  // namespace zt::cpu
