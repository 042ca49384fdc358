#include "optim/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace zt {

LossScaler::LossScaler(bool dynamic, double scale, int64_t growth_interval)
    : dynamic_(dynamic), scale_(scale), growth_interval_(growth_interval) {}

void LossScaler::update(bool overflow) {
  if (overflow) {
    ++skipped_;
    good_steps_ = 0;
    // Halving below 1 would only shrink gradients further; fp16 overflow at scale 1 means
    // the model itself diverged.
    stuck_ = dynamic_ && scale_ > 1 ? 0 : stuck_ + 1;
    if (dynamic_) scale_ = std::max(scale_ / 2, 1.0);
    return;
  }
  stuck_ = 0;
  if (dynamic_ && ++good_steps_ >= growth_interval_) {
    scale_ *= 2;
    good_steps_ = 0;
  }
}

nlohmann::json LossScaler::state() const {
  return {{"dynamic", dynamic_}, {"scale", scale_}, {"good_steps", good_steps_}, {"skipped_steps", skipped_}};
}

void LossScaler::load(const nlohmann::json& s) {
  // What state() wrote, checked before anything changes: a hand-edited value names its key.
  auto field = [&](const char* key, bool ok(const nlohmann::json&), const char* expected) {
    const nlohmann::json v = s.is_object() ? s.value(key, nlohmann::json("missing")) : nlohmann::json("missing");
    if (!ok(v)) fail("loss_scaler.{} is {}, expected {}", key, v.dump(), expected);
    return v;
  };
  auto is_scale = [](const nlohmann::json& v) { return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 1; };
  auto is_count = [](const nlohmann::json& v) { return v.is_number_integer() && v.get<int64_t>() >= 0; };
  const double scale = field("scale", is_scale, "a finite number >= 1").get<double>();
  const int64_t good_steps = field("good_steps", is_count, "a non-negative integer").get<int64_t>();
  const int64_t skipped = field("skipped_steps", is_count, "a non-negative integer").get<int64_t>();
  scale_ = scale;
  good_steps_ = good_steps;
  skipped_ = skipped;
}

}  // namespace zt
