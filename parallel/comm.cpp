#include "parallel/comm.h"

#include <cstring>

namespace zt {

std::string_view comm_op_name(CommOp op) {
  switch (op) {
    case CommOp::all_reduce: return "all_reduce";
    case CommOp::reduce_scatter: return "reduce_scatter";
    case CommOp::all_gather: return "all_gather";
    case CommOp::broadcast: return "broadcast";
    case CommOp::barrier: return "barrier";
  }
  return "?";
}

int64_t CommStats::total_bytes() const {
  int64_t n = 0;
  for (int64_t b : bytes_sent) n += b;
  return n;
}

double CommStats::total_busy_s() const {
  double s = 0;
  for (double b : busy_s) s += b;
  return s;
}

CommStats& CommStats::operator+=(const CommStats& other) {
  for (int i = 0; i < kNumCommOps; ++i) {
    calls[i] += other.calls[i];
    bytes_sent[i] += other.bytes_sent[i];
    busy_s[i] += other.busy_s[i];
  }
  exposed_s += other.exposed_s;
  return *this;
}

CommStats Communicator::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void Communicator::reset_stats() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_ = {};
}

void Communicator::record(CommOp op, int64_t bytes_sent, double busy_s) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  const int i = static_cast<int>(op);
  stats_.calls[i] += 1;
  stats_.bytes_sent[i] += bytes_sent;
  stats_.busy_s[i] += busy_s;
}

void Communicator::record_exposed(double s) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.exposed_s += s;
}

void divide_by_world(Tensor& t, int world) {
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::f32:
      for (float* p = t.data<float>(); p < t.data<float>() + n; ++p) *p /= static_cast<float>(world);
      return;
    case DType::f64:
      for (double* p = t.data<double>(); p < t.data<double>() + n; ++p) *p /= world;
      return;
    case DType::bf16:
      for (uint16_t* p = t.data<uint16_t>(); p < t.data<uint16_t>() + n; ++p)
        *p = f32_to_bf16(bf16_to_f32(*p) / static_cast<float>(world));
      return;
    default: ZT_CHECK(false, "avg needs a floating-point tensor, got {}", dtype_name(t.dtype()));
  }
}

int64_t ring_bytes_sent(CommOp op, int64_t bytes, int world, bool is_root) {
  if (world <= 1) return 0;
  switch (op) {
    case CommOp::all_reduce: return 2 * bytes * (world - 1) / world;
    case CommOp::reduce_scatter:
    case CommOp::all_gather: return bytes * (world - 1) / world;
    case CommOp::broadcast: return is_root ? bytes : 0;
    case CommOp::barrier: return 0;
  }
  return 0;
}

namespace {

class DoneWork : public Work {
 public:
  void wait() override {}
  bool is_completed() override { return true; }
};

class SingleProcessComm : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string_view backend() const override { return "single"; }
  WorkPtr all_reduce(Tensor&, ReduceOp) override { return done(CommOp::all_reduce); }
  WorkPtr reduce_scatter(Tensor& output, const Tensor& input, ReduceOp) override {
    if (output.raw() != input.raw()) output.copy_from(input);
    return done(CommOp::reduce_scatter);
  }
  WorkPtr all_gather(Tensor& output, const Tensor& input) override {
    if (output.raw() != input.raw()) output.copy_from(input);
    return done(CommOp::all_gather);
  }
  WorkPtr broadcast(Tensor&, int) override { return done(CommOp::broadcast); }
  WorkPtr barrier() override { return done(CommOp::barrier); }

 private:
  WorkPtr done(CommOp op) {
    record(op, 0, 0);
    return std::make_shared<DoneWork>();
  }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_comm() { return std::make_unique<SingleProcessComm>(); }

}  // namespace zt
