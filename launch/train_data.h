// The data a training run reads, resolved from the data config in two phases: plan_data
// checks every input and settles the vocabulary without writing anything; materialize_data
// then writes the tokenized corpus and vocab into the run directory and opens the datasets.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/data/dataset.h"
#include "core/data/prepare.h"
#include "core/data/tokenizer.h"

namespace zt {

struct DataPlan {
  std::unique_ptr<Tokenizer> tokenizer;  // null for token files with no vocab file beside them
  int64_t vocab_size = 0;                // the model's vocabulary
  // The files read, in order: one text each, or the token files (shards) of each split.
  std::vector<std::string> train_files, val_files;  // val empty: data.val_fraction of train
  std::string summary;                              // one line for plans: files, samples
};

struct TrainData {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<TokenDataset> train, val;  // val null when there is none
};

DataPlan plan_data(const DataConfig& data, int64_t model_vocab_size);
// With write = false the files are expected to exist already (another rank wrote them).
TrainData materialize_data(DataPlan plan, const DataConfig& data, const std::string& run_dir, bool write = true);

}  // namespace zt
