// Global-norm gradient clipping, split so a distributed engine can all-reduce the partial
// sum of squares between the two halves.
#pragma once
#include <span>

#include "core/tensor.h"

namespace zt {

double sum_of_squares(std::span<const Tensor> grads);  // f64
// min(1, max_norm / (norm + 1e-6)); 1 when max_norm is 0 (clipping off).
float clip_scale(double global_norm, double max_norm);

}  // namespace zt
