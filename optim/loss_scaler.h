// Loss scaling for fp16: the loss (hence every gradient) is multiplied by `scale` so small
// gradients survive fp16's narrow range; the optimizer sees them divided by it again. On an
// overflow (inf/NaN anywhere, seen by every rank through the all-reduced gradient norm) the
// step is skipped; a dynamic scaler then halves the scale, and doubles it after
// `growth_interval` clean steps in a row.
#pragma once
#include <cstdint>

#include <nlohmann/json.hpp>

namespace zt {

class LossScaler {
 public:
  // dynamic = false with scale 1: no scaling at all.
  LossScaler(bool dynamic, double scale, int64_t growth_interval);
  double scale() const { return scale_; }
  bool dynamic() const { return dynamic_; }
  // After each step: whether its gradients overflowed (the step was skipped).
  void update(bool overflow);
  int64_t skipped_steps() const { return skipped_; }
  // Overflowed steps in a row at which the scale could not be lowered (a fixed scale, no
  // scaling, or the dynamic scale at its floor of 1): nothing will recover them. Not saved
  // in checkpoints; a resumed run counts afresh.
  int64_t stuck_steps() const { return stuck_; }

  // For checkpoints: scale, clean-step streak, skipped count.
  nlohmann::json state() const;
  void load(const nlohmann::json& state);

 private:
  bool dynamic_;
  double scale_;
  int64_t growth_interval_;
  int64_t good_steps_ = 0;
  int64_t skipped_ = 0;
  int64_t stuck_ = 0;
};

}  // namespace zt
