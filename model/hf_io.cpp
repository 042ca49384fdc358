#include "model/hf_io.h"

#include <set>

#include "core/kernels.h"
#include "model/hf_dir.h"

namespace zt {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Shape hf_shape(Family family, const ParamSpec& p) {
  if (hf_transposed(family, p)) return {p.shape[1], p.shape[0]};
  return p.shape;
}

// out (cols, rows) = in (rows, cols)^T
void transpose_into(Tensor& out, const Tensor& in) {
  const int64_t rows = in.dim(0), cols = in.dim(1);
  const float* src = in.data<float>();
  float* dst = out.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) dst[c * rows + r] = src[r * cols + c];
}

// Buffers that real GPT-2 checkpoints carry but that are not parameters (the causal mask).
bool ignorable_buffer(const std::string& name) {
  return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias");
}

// The first NaN or infinity of an f32, bf16 or f16 tensor: its index and "NaN", "inf" or
// "-inf"; index -1 when every value is finite. Read as bits: the exponent all ones.
std::pair<int64_t, const char*> first_non_finite(const Tensor& t) {
  auto scan = [&](auto bits, auto exp_mask, auto mantissa_mask, auto sign_mask) -> std::pair<int64_t, const char*> {
    using U = decltype(bits);
    const U* p = static_cast<const U*>(t.raw());
    for (int64_t i = 0; i < t.numel(); ++i)
      if ((p[i] & exp_mask) == exp_mask)
        return {i, (p[i] & mantissa_mask) ? "NaN" : (p[i] & sign_mask) ? "-inf" : "inf"};
    return {-1, ""};
  };
  switch (t.dtype()) {
    case DType::f32: return scan(uint32_t{}, 0x7f800000u, 0x007fffffu, 0x80000000u);
    case DType::bf16: return scan(uint16_t{}, uint16_t{0x7f80}, uint16_t{0x007f}, uint16_t{0x8000});
    case DType::f16: return scan(uint16_t{}, uint16_t{0x7c00}, uint16_t{0x03ff}, uint16_t{0x8000});
    default: return {-1, ""};
  }
}

}  // namespace

bool hf_transposed(Family family, const ParamSpec& p) {
  if (family != Family::gpt2 || p.shape.size() != 2) return false;
  return ends_with(p.name, "attn.c_attn.weight") || ends_with(p.name, "attn.c_gate.weight") || ends_with(p.name, "attn.c_proj.weight") ||
         ends_with(p.name, "mlp.c_fc.weight") || ends_with(p.name, "mlp.c_proj.weight");
}

std::vector<NamedTensor> to_hf_tensors(const Transformer& model) {
  std::vector<NamedTensor> out;
  const Family family = model.spec().family;
  for (const Unit* u : model.units()) {
    for (size_t i = 0; i < u->params().size(); ++i) {
      const ParamSpec& p = u->params()[i];
      Tensor t = u->param(static_cast<int>(i));
      if (hf_transposed(family, p)) {
        Tensor tt = Tensor::empty(hf_shape(family, p), DType::f32, MemTag::workspace);
        transpose_into(tt, t);
        t = tt;
      }
      out.push_back({p.name, t});
    }
  }
  return out;
}

void save_hf_safetensors(const Transformer& model, const std::string& path,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<NamedTensor> tensors = to_hf_tensors(model);
  std::map<std::string, std::string> meta = metadata;
  meta.emplace("format", "pt");
  meta.emplace("zerotrain.family", std::string(family_name(model.spec().family)));
  write_safetensors(path, tensors, meta);
}

namespace {

struct Match {
  size_t unit;  // index in model.units()
  size_t param;
  std::string file_name;
};

// Resolves every parameter to a file tensor and checks names, dtypes, shapes and values.
std::vector<Match> match_hf_tensors(const Transformer& model, const HfWeightFiles& file, const std::string& path) {
  const Family family = model.spec().family;
  std::vector<Match> matches;
  std::set<std::string> used;
  const auto units = model.units();
  for (size_t u = 0; u < units.size(); ++u) {
    for (size_t i = 0; i < units[u]->params().size(); ++i) {
      const ParamSpec& p = units[u]->params()[i];
      std::string name = p.name;
      if (!file.contains(name) && name.rfind("transformer.", 0) == 0 &&
          file.contains(name.substr(12)))
        name = name.substr(12);  // GPT2Model files name "h.0...." without the prefix
      if (!file.contains(name))
        fail("{}: missing tensor '{}' ({} expects it, shape {})", path, p.name,
             family_name(family), shape_str(hf_shape(family, p)));
      DType dt = file.dtype(name);
      if (dt != DType::f32 && dt != DType::bf16 && dt != DType::f16)
        fail("{}: tensor '{}' has dtype {}, expected f32, bf16 or f16", file.file_of(name).path(), name, dtype_name(dt));
      if (file.shape(name) != hf_shape(family, p))
        fail("{}: tensor '{}' has shape {}, the model expects {}", file.file_of(name).path(), name,
             shape_str(file.shape(name)), shape_str(hf_shape(family, p)));
      matches.push_back({u, i, name});
      used.insert(name);
    }
  }
  for (const std::string& name : file.names())
    if (!used.count(name) && !ignorable_buffer(name))
      fail("{}: unexpected tensor '{}' (not a parameter of this {} model{})", path, name,
           family_name(family),
           name == "lm_head.weight" ? "; the config ties the head to the embedding" : "");

  // A NaN or infinity would train to `loss is nan` or export and generate garbage.
  for (const Match& m : matches)
    if (auto [i, what] = first_non_finite(file.get(m.file_name)); i >= 0)
      fail("{}: tensor '{}' holds {} at element {} (weights must be finite)", file.file_of(m.file_name).path(),
           m.file_name, what, i);
  return matches;
}

}  // namespace

void check_hf_safetensors(const Transformer& model, const std::string& path) {
  match_hf_tensors(model, HfWeightFiles::open(path), path);
}

void load_hf_safetensors(Transformer& model, const std::string& path) {
  const HfWeightFiles file = HfWeightFiles::open(path);
  const Family family = model.spec().family;
  const std::vector<Match> matches = match_hf_tensors(model, file, path);
  const auto units = model.units();
  for (const Match& m : matches) {
    Unit* unit = units[m.unit];
    const ParamSpec& p = unit->params()[m.param];
    Tensor src = file.get(m.file_name);
    Tensor dst = unit->param(static_cast<int>(m.param));
    if (src.dtype() != DType::f32) {
      Tensor f = Tensor::empty(src.shape(), DType::f32, MemTag::workspace);
      convert(f, src);
      src = f;
    }
    if (hf_transposed(family, p))
      transpose_into(dst, src);
    else
      dst.copy_from(src.reshape(dst.shape()));
  }
}

}  // namespace zt
