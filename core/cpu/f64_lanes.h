// Fixed-order f64 sums of float products in lanes. GCC keeps a plain `double sum += a * b`
// loop as one dependent chain (it may not reorder the additions): one value per FMA latency,
// ~4 cycles. Here lane l takes the products at positions l mod kLanes in rising order and
// total() adds the lanes in order: kLanes chains at once, and the same bits however a caller
// interleaves its vectors (sum_squares takes several chunks at once).
#pragma once
#include <cstdint>

namespace zt::cpu {

struct F64Lanes {
  static constexpr int64_t kLanes = 8;
  double lane[kLanes] = {};

  // One whole vector: a[0, kLanes) times b[0, kLanes).
  void add(const float* a, const float* b) {
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) lane[l] += static_cast<double>(a[l]) * b[l];
  }
  // A row's last n < kLanes values, which start a vector.
  void add_tail(const float* a, const float* b, int64_t n) {
    for (int64_t l = 0; l < n; ++l) lane[l] += static_cast<double>(a[l]) * b[l];
  }
  double total() const {
    double sum = 0.0;
    for (int64_t l = 0; l < kLanes; ++l) sum += lane[l];
    return sum;
  }
};

// sum of a[i] * b[i] over [0, n) in F64Lanes' order.
inline double dot_f64(const float* a, const float* b, int64_t n) {
  F64Lanes acc;
  const int64_t whole = n / F64Lanes::kLanes * F64Lanes::kLanes;
  for (int64_t i = 0; i < whole; i += F64Lanes::kLanes) acc.add(a + i, b + i);
  acc.add_tail(a + whole, b + whole, n - whole);
  return acc.total();
}

}  // namespace zt::cpu
