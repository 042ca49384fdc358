// Rotary position embedding (Hugging Face Llama rotate_half convention) on raw f32 pointers.
#pragma once
#include <cstdint>

namespace zt::cpu {

// table (T, D): cos(t * theta^(-2i/D)) at [t, i] and the matching sin at [t, D/2 + i], i < D/2.
void rope_table(float* table, int64_t T, int64_t D, double theta);
// Rotates the first n_heads heads (D wide) of each row of x (B*T rows of `width` floats) in
// place; row (b, t) uses table row t. inverse = true applies the transposed rotation.
void rope_apply(float* x, const float* table, int64_t B, int64_t T, int64_t width,
                int64_t n_heads, int64_t D, bool inverse);

}  // namespace zt::cpu
