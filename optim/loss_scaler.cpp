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
  // What state() wrote, checked before anything changes: a hand-edited value names its key.
  auto get = [&](const char* key, bool count) -> const nlohmann::json& {
    static const nlohmann::json missing = "missing";
    const nlohmann::json& v = s.is_object() && s.contains(key) ? s.at(key) : missing;
    const bool ok = count ? v.is_number_integer() && v.get<int64_t>() >= 0
                          : v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 1;
    if (!ok) fail("loss_scaler.{} is {}, expected {}", key, v.dump(), count ? "a non-negative integer" : "a finite number >= 1");
    return v;
  };
  const double scale = get("scale", false).get<double>();
  const int64_t good_steps = get("good_steps", true).get<int64_t>(), skipped = get("skipped_steps", true).get<int64_t>();
  scale_ = scale;
  good_steps_ = good_steps;
  skipped_ = skipped;
}

}  // namespace zt
