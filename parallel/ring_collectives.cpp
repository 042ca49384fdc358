#include "parallel/ring_collectives.h"

#include <algorithm>
#include <cstring>

#include "core/cpu/ops.h"
#include "core/error.h"

namespace zt {

namespace {

// y = a (op) b over n elements.
template <typename T>
void combine(T* y, const T* a, const T* b, int64_t n, ReduceOp op) {
  if (op == ReduceOp::max) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::max(a[i], b[i]);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }
}

void combine(void* y, const void* a, const void* b, int64_t n, DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::f32: return combine(static_cast<float*>(y), static_cast<const float*>(a), static_cast<const float*>(b), n, op);
    case DType::f64: return combine(static_cast<double*>(y), static_cast<const double*>(a), static_cast<const double*>(b), n, op);
    case DType::i32:
      return combine(static_cast<int32_t*>(y), static_cast<const int32_t*>(a), static_cast<const int32_t*>(b), n, op);
    case DType::bf16:
      ZT_CHECK(op != ReduceOp::max, "reduce_scatter: max of bf16 is not supported");
      return cpu::sum_bf16(static_cast<uint16_t*>(y), static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b), n);
    default:
      ZT_CHECK(false, "reductions need f32, f64 or i32 (or bf16 for sum and avg), got {}", dtype_name(dtype));
  }
}

}  // namespace

void ring_reduce_scatter(Tensor& output, const Tensor& input, ReduceOp op, int rank, int world,
                         const SendRecv& sendrecv) {
  ZT_CHECK(input.numel() == output.numel() * world && input.dtype() == output.dtype(),
           "reduce_scatter: input {} output {} world {}", input.shape_str(), output.shape_str(), world);
  const DType dtype = input.dtype();
  const int64_t n = output.numel(), elem = static_cast<int64_t>(dtype_size(dtype));
  const auto* in = static_cast<const char*>(input.raw());
  auto* out = static_cast<char*>(output.raw());
  if (world == 1) {
    if (out != in) output.copy_from(input);
  } else {
    const int next = (rank + 1) % world, prev = (rank + world - 1) % world;
    const int64_t piece = std::max<int64_t>(1, std::min(n, kRingPieceBytes / elem));
    Tensor received = Tensor::empty({piece}, dtype, MemTag::comm), partial = Tensor::empty({piece}, dtype, MemTag::comm);
    auto chunk = [&](int c, int64_t at) { return in + (static_cast<int64_t>(c) * n + at) * elem; };
    for (int64_t at = 0; at < n; at += piece) {
      const int64_t len = std::min(piece, n - at), bytes = len * elem;
      // Step s sends chunk rank-s-1 (this rank's own part at s = 0, then the partial sum it
      // received and added to) and receives chunk rank-s-2, which at the last step is its own.
      for (int s = 0; s + 1 < world; ++s) {
        const int send_c = (rank - s - 1 + 2 * world) % world, recv_c = (rank - s - 2 + 2 * world) % world;
        // consume runs once `partial` has been sent, so the new sum may go over it.
        void* dst = s + 2 == world ? out + at * elem : partial.raw();
        sendrecv(s == 0 ? chunk(send_c, at) : partial.raw(), next, prev, bytes, received.raw(),
                 [&](const void* got) { combine(dst, got, chunk(recv_c, at), len, dtype, op); });
      }
    }
  }
  if (op == ReduceOp::avg) divide_by_world(output, world);
}

void ring_all_gather(Tensor& output, const Tensor& input, int rank, int world, const SendRecv& sendrecv) {
  ZT_CHECK(output.numel() == input.numel() * world && input.dtype() == output.dtype(),
           "all_gather: input {} output {} world {}", input.shape_str(), output.shape_str(), world);
  const int64_t chunk_bytes = input.nbytes();
  auto* out = static_cast<char*>(output.raw());
  auto chunk = [&](int c) { return out + static_cast<int64_t>(c) * chunk_bytes; };
  if (input.raw() != chunk(rank)) std::memcpy(chunk(rank), input.raw(), static_cast<size_t>(chunk_bytes));
  const int next = (rank + 1) % world, prev = (rank + world - 1) % world;
  for (int64_t at = 0; at < chunk_bytes; at += kRingPieceBytes) {
    const int64_t bytes = std::min<int64_t>(kRingPieceBytes, chunk_bytes - at);
    // Step s passes on chunk rank-s (this rank's own at s = 0, then the one it just received)
    // and receives chunk rank-s-1.
    for (int s = 0; s + 1 < world; ++s) {
      const int send_c = (rank - s + world) % world, recv_c = (rank - s - 1 + 2 * world) % world;
      char* dst = chunk(recv_c) + at;
      sendrecv(chunk(send_c) + at, next, prev, bytes, dst, [&](const void* got) {
        if (got != dst) std::memcpy(dst, got, static_cast<size_t>(bytes));
      });
    }
  }
}

void ring_all_reduce(Tensor& buffer, ReduceOp op, int rank, int world, const SendRecv& sendrecv) {
  if (world == 1) return;  // the sum, maximum or average of one buffer
  Tensor flat = buffer.flatten();
  const int64_t n = flat.numel(), k = n / world, whole = k * world;
  auto round = [&](Tensor& part, int64_t chunk) {
    Tensor own = part.slice(rank * chunk, (rank + 1) * chunk);
    ring_reduce_scatter(own, part, op, rank, world, sendrecv);
    ring_all_gather(part, own, rank, world, sendrecv);
  };
  if (k > 0) {
    Tensor part = flat.slice(0, whole);
    round(part, k);
  }
  if (whole < n) {  // the tail, one element per rank; what pads it is never copied back
    Tensor tail = Tensor::zeros({world}, flat.dtype(), MemTag::comm);
    const size_t bytes = static_cast<size_t>((n - whole) * static_cast<int64_t>(dtype_size(flat.dtype())));
    std::memcpy(tail.raw(), flat.slice(whole, n).raw(), bytes);
    round(tail, 1);
    std::memcpy(flat.slice(whole, n).raw(), tail.raw(), bytes);
  }
}

}  // namespace zt
