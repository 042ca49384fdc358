// Weights in Hugging Face safetensors layout: the family's tensor names, gpt2's Conv1D
// matrices stored [in, out], a tied gpt2 head not written separately.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "model/safetensors.h"
#include "model/transformer.h"

namespace zt {

// True when the family stores this parameter transposed relative to our [out, in] layout.
bool hf_transposed(Family family, const ParamSpec& p);

// The model's parameters as HF tensors (transposed copies where the layout differs).
std::vector<NamedTensor> to_hf_tensors(const Transformer& model);
void save_hf_safetensors(const Transformer& model, const std::string& path,
                         const std::map<std::string, std::string>& metadata = {});

// Loads every parameter from `path` into the model's bound buffers: a .safetensors file, or
// a Hugging Face model directory (model.safetensors or sharded; see hf_dir.h). Checks every
// tensor before writing anything: a missing, extra or mis-shaped tensor, or one holding a
// NaN or an infinity, is an error naming it.
// f32, bf16 and f16 files are accepted; GPT-2 files without the "transformer." prefix too.
void load_hf_safetensors(Transformer& model, const std::string& path);
// The same checks, writing nothing: the model need not have bound parameters.
void check_hf_safetensors(const Transformer& model, const std::string& path);

}  // namespace zt
