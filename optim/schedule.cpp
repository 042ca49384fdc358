#include "optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace zt {

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (kind == ScheduleKind::constant) return lr;
  const int64_t span = total_steps - warmup_steps;
  const double progress =
      span <= 0 ? 1.0 : std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  if (kind == ScheduleKind::cosine) return min_lr + 0.5 * (1.0 + std::cos(M_PI * progress)) * (lr - min_lr);
  return lr + (min_lr - lr) * progress;
}

}  // namespace zt
