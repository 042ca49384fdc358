// The online softmax of FlashAttention: a running max m and sum l over scores seen one at a
// time, so a weighted sum of values needs no second pass and no stored score row. The CUDA
// attention kernels (core/cuda/attention.cu) use it; tests/core/test_online_softmax.cpp checks
// the recurrence against a direct softmax on the CPU.
#pragma once
#include <cmath>

#include "core/math/hd.h"

namespace zt::math {

struct OnlineSoftmax {
  float m = -INFINITY;  // largest score so far
  float l = 0.f;        // sum of exp(score - m) so far

  // Takes score s. The caller's accumulator becomes acc * corr + p * value: corr rescales what
  // was summed under the old max, p is the weight of this score under the new one. Scores must
  // be finite (masked positions are skipped, not fed as -inf).
  ZT_HD void add(float s, float& corr, float& p) {
    const float m_new = fmaxf(m, s);
    corr = expf(m - m_new);
    p = expf(s - m_new);
    l = l * corr + p;
    m = m_new;
  }
  // Natural log of the sum of exp(score) over every score added.
  ZT_HD float lse() const { return m + logf(l); }
};

}  // namespace zt::math
