// The online-softmax recurrence the CUDA attention kernels run (core/math/online_softmax.h),
// checked on the CPU: scores fed one at a time give the softmax-weighted sum of values and the
// log-sum-exp of a direct two-pass computation in f64, at any length and score scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/math/online_softmax.h"

namespace zt {
namespace {

TEST(OnlineSoftmax, MatchesADirectSoftmaxWeightedSum) {
  std::mt19937 rng(7);
  for (int n : {1, 2, 17, 1000}) {
    for (float spread : {0.1f, 5.f, 60.f}) {  // 60: exp overflows f32 without the running max
      std::normal_distribution<float> dist(0.f, spread);
      const int D = 5;
      std::vector<float> s(n), v(static_cast<size_t>(n) * D);
      for (float& x : s) x = dist(rng);
      for (float& x : v) x = dist(rng) / spread;
      math::OnlineSoftmax softmax;
      std::vector<float> acc(D, 0.f);
      for (int j = 0; j < n; ++j) {
        float corr, p;
        softmax.add(s[j], corr, p);
        for (int d = 0; d < D; ++d) acc[d] = acc[d] * corr + p * v[j * D + d];
      }
      double mx = s[0];
      for (float x : s) mx = std::max(mx, static_cast<double>(x));
      double sum = 0;
      for (float x : s) sum += std::exp(x - mx);
      EXPECT_NEAR(softmax.lse(), std::log(sum) + mx, 1e-5 * (1 + std::fabs(std::log(sum) + mx))) << n << " " << spread;
      for (int d = 0; d < D; ++d) {
        double want = 0;
        for (int j = 0; j < n; ++j) want += std::exp(s[j] - mx) / sum * v[j * D + d];
        EXPECT_NEAR(acc[d] / softmax.l, want, 1e-5) << "n " << n << " spread " << spread << " d " << d;
      }
    }
  }
}

}  // namespace
}  // namespace zt
