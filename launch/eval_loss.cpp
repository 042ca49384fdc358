#include "launch/eval_loss.h"

#include <cmath>

#include "parallel/engine.h"

namespace zt {

std::vector<std::vector<int64_t>> eval_sample_batches(int64_t n, int64_t micro_batch, int64_t batches) {
  std::vector<std::vector<int64_t>> out;
  if (batches == 0) {
    for (int64_t first = 0; first < n; first += micro_batch) {
      std::vector<int64_t>& ids = out.emplace_back();
      for (int64_t i = first; i < std::min(n, first + micro_batch); ++i) ids.push_back(i);
    }
    return out;
  }
  const int64_t count = std::min(batches * micro_batch, n) / micro_batch * micro_batch;
  if (count == 0) return out;
  const double stride = static_cast<double>(n) / static_cast<double>(count);
  for (int64_t b = 0; b < count / micro_batch; ++b) {
    std::vector<int64_t>& ids = out.emplace_back(micro_batch);
    for (int64_t i = 0; i < micro_batch; ++i)
      ids[i] = static_cast<int64_t>(static_cast<double>(b * micro_batch + i) * stride);
  }
  return out;
}

EvalResult evaluate_loss(Transformer& model, Engine* engine, const TokenDataset& data,
                         const std::vector<std::vector<int64_t>>& batches) {
  const int64_t T = data.seq_len();
  EvalResult r;
  double loss_sum = 0;
  Tensor inputs, targets;
  for (const std::vector<int64_t>& ids : batches) {
    const auto B = static_cast<int64_t>(ids.size());
    if (!inputs.defined() || inputs.numel() != B * T) {
      inputs = Tensor::empty({B, T}, DType::i32, MemTag::activations);
      targets = Tensor::empty({B, T}, DType::i32, MemTag::activations);
    }
    data.fill_batch(ids, inputs, targets);
    Stream s;
    s.B = B;
    s.T = T;
    s.tokens = inputs;
    s.targets = targets;
    if (engine) engine->begin_micro_batch(false);
    model.forward(s, engine);
    loss_sum += s.loss_sum;
    r.samples += B;
  }
  r.tokens = r.samples * T;
  r.loss = r.tokens > 0 ? loss_sum / static_cast<double>(r.tokens) : NAN;
  return r;
}

}  // namespace zt
