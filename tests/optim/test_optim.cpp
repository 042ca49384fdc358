// Optimizers, schedules and clipping against values computed by hand (PyTorch's formulas
// written out in f64).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "core/kernels.h"
#include "core/error.h"
#include "optim/clip.h"
#include "optim/loss_scaler.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"

namespace zt {
namespace {

Tensor vec(std::vector<float> v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::f32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

TEST(AdamW, ThreeStepsMatchTorchFormulaWithPerRangeDecay) {
  const double lr = 0.1, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.5;
  std::vector<double> p = {1.0, -2.0, 0.5, 3.0};
  std::vector<std::vector<double>> grads = {{0.1, -0.2, 0.3, 0.0}, {0.5, 0.1, -0.1, 1.0}, {-0.3, 0.2, 0.2, -0.5}};
  ParamShard shard{vec({1.f, -2.f, 0.5f, 3.f}), vec({0, 0, 0, 0}), {{0, 2, true}, {2, 4, false}}};
  auto opt = make_adamw({float(b1), float(b2), float(eps), float(wd)});
  std::vector<double> m(4, 0), v(4, 0);
  for (int step = 1; step <= 3; ++step) {
    for (int i = 0; i < 4; ++i) shard.grads.data<float>()[i] = static_cast<float>(grads[step - 1][i]);
    opt->step(std::span<ParamShard>(&shard, 1), static_cast<float>(lr));
    for (int i = 0; i < 4; ++i) {
      const double g = grads[step - 1][i], decay = i < 2 ? wd : 0.0;
      p[i] *= 1 - lr * decay;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double mhat = m[i] / (1 - std::pow(b1, step)), vhat = v[i] / (1 - std::pow(b2, step));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
      EXPECT_NEAR(shard.params.data<float>()[i], p[i], 1e-5) << "step " << step << " i " << i;
    }
  }
  EXPECT_EQ(opt->step_count(), 3);
  auto state = opt->state(0);
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "exp_avg");
  EXPECT_NEAR(state[0].second.data<float>()[3], m[3], 1e-6);
  EXPECT_NEAR(state[1].second.data<float>()[1], v[1], 1e-7);
}

TEST(Sgd, PlainAndMomentumWithWeightDecayMatchTorch) {
  for (double momentum : {0.0, 0.9}) {
    const double lr = 0.5, wd = 0.1;
    std::vector<double> p = {1.0, -1.0}, buf = {0, 0};
    ParamShard shard{vec({1.f, -1.f}), vec({0, 0}), {{0, 2, true}}};
    auto opt = make_sgd({float(momentum), float(wd)});
    const double g[3][2] = {{0.2, 0.4}, {-0.1, 0.3}, {0.5, -0.2}};
    for (int s = 0; s < 3; ++s) {
      shard.grads.data<float>()[0] = float(g[s][0]);
      shard.grads.data<float>()[1] = float(g[s][1]);
      opt->step(std::span<ParamShard>(&shard, 1), float(lr));
      for (int i = 0; i < 2; ++i) {
        double d = g[s][i] + wd * p[i];
        if (momentum > 0) d = buf[i] = s == 0 ? d : momentum * buf[i] + d;
        p[i] -= lr * d;
        EXPECT_NEAR(shard.params.data<float>()[i], p[i], 1e-6) << momentum << " " << s;
      }
    }
    EXPECT_EQ(opt->state(0).size(), momentum > 0 ? 1u : 0u);
  }
}

// Clipping scales the gradients as the update reads them: the update of gradients scaled
// beforehand (AdamW bitwise: g * scale is rounded once either way; SGD's g * scale + wd * p may
// be one FMA, so within a few ulp), and the gradients stay unscaled.
TEST(Optimizers, GradScaleEqualsPrescaledGradients) {
  const float scale = 0.37f;
  const std::vector<float> g = {0.1f, -0.2f, 0.3f, 7.f, -1e-3f};
  for (bool adamw : {true, false}) {
    ParamShard scaled_inside{vec({1.f, -2.f, 0.5f, 3.f, 0.f}), vec(g), {{0, 3, true}, {3, 5, false}}};
    std::vector<float> pre = g;
    for (float& x : pre) x *= scale;
    ParamShard prescaled{vec({1.f, -2.f, 0.5f, 3.f, 0.f}), vec(pre), {{0, 3, true}, {3, 5, false}}};
    auto a = adamw ? make_adamw({0.9f, 0.99f, 1e-8f, 0.1f}) : make_sgd({0.9f, 0.1f});
    auto b = adamw ? make_adamw({0.9f, 0.99f, 1e-8f, 0.1f}) : make_sgd({0.9f, 0.1f});
    for (int step = 0; step < 2; ++step) {
      a->step(std::span<ParamShard>(&scaled_inside, 1), 0.1f, scale);
      b->step(std::span<ParamShard>(&prescaled, 1), 0.1f);
    }
    for (int i = 0; i < 5; ++i) {
      if (adamw)
        EXPECT_EQ(scaled_inside.params.data<float>()[i], prescaled.params.data<float>()[i]) << i;
      else
        EXPECT_FLOAT_EQ(scaled_inside.params.data<float>()[i], prescaled.params.data<float>()[i]) << i;
      EXPECT_EQ(scaled_inside.grads.data<float>()[i], g[size_t(i)]);
    }
  }
}

// A shard with a compute copy: the step also writes the updated params rounded, bitwise what
// convert() gives afterwards, for bf16 (written in the update's own loop) and f16, for AdamW
// and SGD with and without momentum, and for ranges with and without decay. 1000 values cross
// the vector loop's remainder.
TEST(Optimizers, StepWritesTheComputeCopyAsConvertWould) {
  for (DType dt : {DType::bf16, DType::f16})
    for (const char* kind : {"adamw", "sgd momentum", "sgd"}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << kind);
      const bool adamw = std::string(kind) == "adamw";
      const int64_t n = 1000;
      std::vector<float> p(n), g(n);
      for (int64_t i = 0; i < n; ++i) {
        p[i] = std::sin(0.37f * float(i)) * 3.f;
        g[i] = std::cos(0.11f * float(i)) * 0.2f;
      }
      ParamShard shard{vec(p), vec(g), {{0, 600, true}, {600, n, false}}, Tensor::empty({n}, dt)};
      auto opt = adamw ? make_adamw({0.9f, 0.95f, 1e-8f, 0.1f})
                       : make_sgd({std::string(kind) == "sgd" ? 0.f : 0.9f, 0.1f});
      for (int step = 0; step < 2; ++step) {
        opt->step(std::span<ParamShard>(&shard, 1), 0.01f);
        Tensor want = Tensor::empty({n}, dt);
        convert(want, shard.params);
        EXPECT_EQ(std::memcmp(want.raw(), shard.compute.raw(), size_t(n) * 2), 0) << "step " << step;
      }
    }
}

TEST(Schedule, WarmupThenCosineLinearOrConstant) {
  LrSchedule s{ScheduleKind::cosine, 1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(4), 0.5);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);  // cosine midpoint: (lr + min) / 2
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);
  s.kind = ScheduleKind::linear;
  EXPECT_NEAR(s.at(35), 1.0 - 0.9 * 0.25, 1e-12);
  s.kind = ScheduleKind::constant;
  EXPECT_DOUBLE_EQ(s.at(5), 0.6);
  EXPECT_DOUBLE_EQ(s.at(100), 1.0);
  LrSchedule short_run{ScheduleKind::cosine, 1.0, 0.2, 10, 5};
  EXPECT_DOUBLE_EQ(short_run.at(12), 0.2);
}

TEST(Clip, GlobalNormAndScale) {
  std::vector<Tensor> g = {vec({3.f, 0.f}), vec({4.f})};
  EXPECT_DOUBLE_EQ(sum_of_squares(g), 25.0);
  EXPECT_NEAR(clip_scale(5.0, 1.0), 0.2, 1e-6);
  EXPECT_EQ(clip_scale(0.5, 1.0), 1.f);
  EXPECT_EQ(clip_scale(100.0, 0.0), 1.f);  // off
}

// Overflows count as stuck where no lower scale can rescue them: a fixed scale, no scaling,
// the dynamic scale once it sits at 1. A clean step ends the streak.
TEST(LossScaler, CountsOverflowsInARowThatNoLowerScaleCanRescue) {
  LossScaler fixed(false, 128, 2), none(false, 1, 2), dynamic(true, 4, 1000);
  for (int i = 1; i <= 3; ++i) {
    fixed.update(true);
    none.update(true);
    EXPECT_EQ(fixed.stuck_steps(), i);
    EXPECT_EQ(none.stuck_steps(), i);
  }
  fixed.update(false);
  EXPECT_EQ(fixed.stuck_steps(), 0);
  EXPECT_EQ(fixed.skipped_steps(), 3);
  dynamic.update(true);  // 4 -> 2
  dynamic.update(true);  // 2 -> 1
  EXPECT_EQ(dynamic.stuck_steps(), 0);
  dynamic.update(true);  // at 1 already
  dynamic.update(true);
  EXPECT_EQ(dynamic.stuck_steps(), 2);
  EXPECT_EQ(dynamic.scale(), 1);
  dynamic.update(false);
  EXPECT_EQ(dynamic.stuck_steps(), 0);
}

TEST(LossScaler, StateLoadsBackAndABadValueNamesItsKeyAndChangesNothing) {
  LossScaler a(true, 1024, 2);
  a.update(false);
  a.update(false);  // two clean steps: doubled
  a.update(true);   // overflow: halved, one skipped
  a.update(false);
  LossScaler b(true, 8, 2);
  b.load(a.state());
  EXPECT_EQ(b.state(), a.state());
  auto error_of = [&](const char* key, nlohmann::json value) {
    nlohmann::json s = a.state();
    s[key] = value;
    try {
      b.load(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(error_of("scale", "big"), "loss_scaler.scale is \"big\", expected a finite number >= 1");
  EXPECT_EQ(error_of("scale", 0.5), "loss_scaler.scale is 0.5, expected a finite number >= 1");
  EXPECT_EQ(error_of("good_steps", -1), "loss_scaler.good_steps is -1, expected a non-negative integer");
  EXPECT_EQ(error_of("skipped_steps", 1.5), "loss_scaler.skipped_steps is 1.5, expected a non-negative integer");
  nlohmann::json missing = a.state();
  missing.erase("good_steps");
  EXPECT_THROW(b.load(missing), Error);
  EXPECT_EQ(b.state(), a.state()) << "a refused state leaves the scaler as it was";
}

}  // namespace
}  // namespace zt
