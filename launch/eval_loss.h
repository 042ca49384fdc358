// Validation loss: which samples an evaluation reads and their mean per-token loss. The
// trainer's val loss and `zt eval` both go through here, so on the same data and weights they
// report the same number.
#pragma once
#include <cstdint>
#include <vector>

#include "core/data/dataset.h"
#include "model/transformer.h"

namespace zt {

class Engine;

// The micro-batches (sample ids) of an evaluation of `batches` micro-batches of `micro_batch`
// samples: spread evenly over the dataset and the same at every evaluation, so evaluations
// are comparable; whole micro-batches only. batches = 0 means every sample in order, the last
// micro-batch possibly shorter.
std::vector<std::vector<int64_t>> eval_sample_batches(int64_t num_samples, int64_t micro_batch, int64_t batches);

struct EvalResult {
  double loss = 0;     // mean per-token loss; NaN when no sample was read
  int64_t tokens = 0;  // targets scored
  int64_t samples = 0;
};

// Forward passes over `batches` of `data`. With an engine it runs as a training step's
// forward does (at ZeRO stage 3 every rank must take part); without, on a LocalModel's
// resident weights.
EvalResult evaluate_loss(Transformer& model, Engine* engine, const TokenDataset& data,
                         const std::vector<std::vector<int64_t>>& batches);

}  // namespace zt
