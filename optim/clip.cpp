#include "optim/clip.h"

#include <algorithm>

#include "core/kernels.h"

namespace zt {

double sum_of_squares(std::span<const Tensor> grads) {
  double s = 0;
  for (const Tensor& g : grads) s += sum_squares(g);
  return s;
}

float clip_scale(double global_norm, double max_norm) {
  if (max_norm <= 0) return 1.f;
  return static_cast<float>(std::min(1.0, max_norm / (global_norm + 1e-6)));
}

}  // namespace zt
