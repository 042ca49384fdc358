// Learning-rate schedules: linear warmup, then constant, cosine or linear decay to min_lr.
#pragma once
#include <cstdint>

namespace zt {

enum class ScheduleKind : uint8_t { constant, cosine, linear };

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::constant;
  double lr = 1e-3, min_lr = 0;
  int64_t warmup_steps = 0, total_steps = 1;
  // step is 0-based. Warmup: lr (step+1)/warmup; then progress = (step - warmup) /
  // (total - warmup) in [0, 1] drives the decay from lr to min_lr.
  double at(int64_t step) const;
};

}  // namespace zt
