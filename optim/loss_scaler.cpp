#include "optim/loss_scaler.h"

#include <algorithm>

namespace zt {

LossScaler::LossScaler(bool dynamic, double scale, int64_t growth_interval)
    : dynamic_(dynamic), scale_(scale), growth_interval_(growth_interval) {}

void LossScaler::update(bool overflow) {
  if (overflow) {
    ++skipped_;
    good_steps_ = 0;
    // Halving below 1 would only shrink gradients further; fp16 overflow at scale 1 means
    // the model itself diverged, which the loss check reports.
    if (dynamic_) scale_ = std::max(scale_ / 2, 1.0);
    return;
  }
  if (dynamic_ && ++good_steps_ >= growth_interval_) {
    scale_ *= 2;
    good_steps_ = 0;
  }
}

nlohmann::json LossScaler::state() const {
  return {{"dynamic", dynamic_}, {"scale", scale_}, {"good_steps", good_steps_}, {"skipped_steps", skipped_}};
}

void LossScaler::load(const nlohmann::json& s) {
  scale_ = s.at("scale");
  good_steps_ = s.at("good_steps");
  skipped_ = s.at("skipped_steps");
}

}  // namespace zt
