// Tensor-level layer kernels: check shapes, then dispatch to the device backend.
#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "core/cpu/gemm.h"
#include "core/cpu/ops.h"
#include "core/cpu/reduce.h"
#include "core/kernels.h"
#include "core/kernels/check.h"

namespace zt {

using detail::check_f32_cpu;
using detail::cols;
using detail::rows;

namespace {
// Each tensor f32 on `device`; optional ones are passed as null and skipped.
struct Named {
  const Tensor* t;
  const char* what;
};
void check_f32_each(const Device& device, std::initializer_list<Named> tensors) {
  for (const Named& n : tensors)
    if (n.t) detail::check_f32_on(*n.t, device, n.what);
}

// Token ids and targets index rows of a table: one out of range would read or write outside
// it, so every id is checked (a serial pass over N ints, negligible next to the kernel).
void check_token_range(const Tensor& ids, int64_t limit) {
  const int32_t* p = ids.data<int32_t>();
  int32_t lo = 0, hi = 0;
  for (int64_t i = 0; i < ids.numel(); ++i) {
    lo = std::min(lo, p[i]);
    hi = std::max(hi, p[i]);
  }
  ZT_CHECK(lo >= 0 && hi < limit, "token ids span [{}, {}], outside [0, {})", lo, hi, limit);
}
}  // namespace

namespace {

// A GEMM's beta for a gradient it writes: 1 adds onto what C holds, 0 writes over it.
float beta_of(GradWrite write) { return write == GradWrite::accumulate ? 1.f : 0.f; }

// The largest bf16 copy a shared GemmOperand makes (see below).
constexpr int64_t kRoundOnceMaxBytes = int64_t{4} << 20;

// A GEMM operand in the compute dtype (the weight's). bf16: a real bf16 GEMM, with f32
// inputs rounded to bf16 as the kernel packs them; a shared one (read by two GEMMs: a
// linear's dout in backward) is rounded once into a bf16 copy instead, since a streaming pass
// is cheaper than rounding while packing once it has left L2 (up to 20% of a GEMM at the
// default job's shapes) and the GEMMs then read half the bytes; same values either way. A
// copy that would exceed kRoundOnceMaxBytes (a large vocabulary's logits gradient) is not
// made, so it never adds more than that to a step's peak memory. f16: rounded to f16 (inf past
// 65504, as on a GPU) and held as f32 for an fp32 GEMM. f32: as is.
class GemmOperand {
 public:
  GemmOperand(const Tensor& t, DType compute) : t_(t), compute_(compute) {
    if (compute == DType::f16 && t.dtype() == DType::f32) {
      t_ = Tensor::empty(t.shape(), DType::f32, MemTag::workspace);
      cpu::round_to_f16(t_.data<float>(), t.data<float>(), t.numel());
    } else if (compute == DType::f16) {
      t_ = Tensor::empty(t.shape(), DType::f32, MemTag::workspace);
      convert(t_, t);
    }
  }
  // A shared operand, an f32 (N, C) matrix. With colsum (C values), t's column sums are added
  // there in the same pass that rounds it, if it is rounded: one read of t instead of two.
  // read_where_written: its readers take each row on the thread that rounded it (RowBlocks);
  // otherwise a copy with column sums is streamed out (cpu::colsum_accumulate).
  static GemmOperand shared(const Tensor& t, DType compute, float* colsum, bool read_where_written) {
    const int64_t N = rows(t), C = cols(t);
    if (compute != DType::bf16 || t.numel() * 2 > kRoundOnceMaxBytes) {
      if (colsum) cpu::colsum_accumulate(colsum, t.data<float>(), N, C);
      return GemmOperand(t, compute);
    }
    Tensor rounded = Tensor::empty(t.shape(), DType::bf16, MemTag::workspace);
    if (colsum)
      cpu::colsum_accumulate(colsum, t.data<float>(), N, C, detail::bf16_data(rounded), !read_where_written);
    else
      convert(rounded, t);
    return GemmOperand(rounded, compute);
  }
  bool bf16() const { return compute_ == DType::bf16; }
  // Held as bf16: for an f32 tensor, shared()'s rounded copy, its rows split among threads as
  // RowBlocks does (colsum_accumulate exactly, convert's static split to within a row).
  bool bf16_storage() const { return t_.dtype() == DType::bf16; }
  cpu::Bf16Operand as_bf16() const {
    return t_.dtype() == DType::bf16 ? cpu::Bf16Operand(t_.data<uint16_t>()) : cpu::Bf16Operand::rounded(t_.data<float>());
  }
  const float* as_f32() const { return t_.data<float>(); }

 private:
  Tensor t_;
  DType compute_;
};

// A bf16 weight gradient whose dout was rounded into a copy (split among threads by rows, as
// RowBlocks) is summed by the same row blocks (cpu::gemm_bf16_tn_row_blocks), so that each
// thread reads only the rows it rounded, from its own cache, when each block has at least this
// many rows and the blocks' partial sums fit in kRoundOnceMaxBytes: adding the partials then
// costs little next to the GEMM's 2 * kMinRowsPerBlock FLOPs per weight per block. The copy
// can then stay in cache (plain stores) where it had to be streamed to memory: on the default
// job (2 threads, Zen 5) the bf16 step ran 1-3% faster.
constexpr int64_t kMinRowsPerBlock = 256;

// C (M,N) f32 = op(A) @ op(B) + beta C in the operands' compute dtype, then the epilogue.
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const GemmOperand& A, int64_t lda,
          const GemmOperand& B, int64_t ldb, float beta, float* C, int64_t ldc, const cpu::Epilogue& epilogue = {}) {
  if (A.bf16())
    cpu::gemm_bf16(ta, tb, M, N, K, 1.f, A.as_bf16(), lda, B.as_bf16(), ldb, beta, C, ldc, epilogue);
  else
    cpu::sgemm(ta, tb, M, N, K, 1.f, A.as_f32(), lda, B.as_f32(), ldb, beta, C, ldc, epilogue);
}

DType compute_dtype_of(const Tensor& weight, const Tensor& inp) {
  const DType c = weight.dtype();
  ZT_CHECK(weight.device().is_cpu() && inp.device().is_cpu(), "linear: CPU tensors expected");
  ZT_CHECK(c == DType::f32 || c == DType::bf16 || c == DType::f16, "linear weight dtype {}", dtype_name(c));
  ZT_CHECK(inp.dtype() == DType::f32 || inp.dtype() == c, "linear input {} with {} weights", dtype_name(inp.dtype()),
           dtype_name(c));
  return c;
}

// A device GEMM operand in the compute dtype: as is, or converted into a workspace copy.
Tensor device_operand(const Tensor& t, DType compute) {
  if (t.dtype() == compute) return t;
  Tensor c = Tensor::empty(t.shape(), compute, MemTag::workspace, t.device());
  convert(c, t);
  return c;
}

// dout as the device GEMMs read it, with its row stride: as is in f32, else a workspace copy
// in the compute dtype with rows device_dout_row_stride apart, zero past its columns. An odd
// row length leaves cuBLASLt only its slow kernels: GPT-2's LM head backward (16384 x 50257,
// bf16) took 19.2 ms on an H200, against 4.5 at 50304 columns.
[[maybe_unused]] std::pair<Tensor, int64_t> device_rows_operand(const Tensor& t, DType compute) {
  const int64_t r = rows(t), c = cols(t);
  if (t.dtype() == compute) return {t, c};
  const int64_t ld = device_dout_row_stride(c, compute);
  if (ld == c) return {device_operand(t, compute), c};
  Tensor copy = Tensor::empty({r, ld}, compute, MemTag::workspace, t.device());
  if constexpr (detail::kWithCuda)
    cuda::convert_rows(copy.raw(), detail::elem_of(copy), ld, t.raw(), detail::elem_of(t), c, r, c);
  return {copy, ld};
}

void linear_forward_cuda(Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor* bias) {
  const Device dev = out.device();
  detail::check_float_on(out, dev, "linear out");
  detail::check_float_on(weight, dev, "linear weight");
  detail::check_float_on(inp, dev, "linear inp");
  const DType compute = weight.dtype();
  ZT_CHECK(inp.dtype() == DType::f32 || inp.dtype() == compute, "linear input {} with {} weights",
           dtype_name(inp.dtype()), dtype_name(compute));
  const int64_t N = rows(inp), C = cols(inp), OC = weight.dim(0);
  ZT_CHECK(weight.ndim() == 2 && weight.dim(1) == C && rows(out) == N && cols(out) == OC,
           "linear: inp {} weight {} out {}", inp.shape_str(), weight.shape_str(), out.shape_str());
  if (bias) {
    detail::check_f32_on(*bias, dev, "bias");
    ZT_CHECK(bias->numel() == OC, "linear bias {} for {} outputs", bias->shape_str(), OC);
  }
  if constexpr (detail::kWithCuda) {
    const Tensor a = device_operand(inp, compute);
    cuda::GemmArgs g;
    g.trans_b = true;
    g.M = N, g.N = OC, g.K = C;
    g.A = a.raw(), g.lda = C, g.B = weight.raw(), g.ldb = C, g.ab_type = detail::elem_of(weight);
    g.bias = detail::f32_or_null(bias);
    const DeviceOutRows plan = device_out_rows(N, OC);
    if (plan.stride == OC) {
      // The GEMM writes f32 (with the bias added), rounded once into a bf16/f16 out, as on the CPU.
      Tensor f32_out = out.dtype() == DType::f32 ? out : Tensor::empty(out.shape(), DType::f32, MemTag::workspace, dev);
      g.C = f32_out.raw(), g.ldc = OC;
      cuda::gemm(g);
      if (f32_out.raw() != out.raw()) convert(out, f32_out);
      return;
    }
    // Misaligned rows: chunks of rows through an aligned workspace (GPT-2's LM head forward,
    // 16384 x 50257 bf16, took 13.3 ms on an H200 with rows of 50257, 1.9 ms at 50304).
    Tensor rows_ws = Tensor::empty({plan.chunk_rows, plan.stride}, DType::f32, MemTag::workspace, dev);
    const int64_t a_row_bytes = C * static_cast<int64_t>(dtype_size(a.dtype()));
    const int64_t out_elem = static_cast<int64_t>(dtype_size(out.dtype()));
    for (int64_t r0 = 0; r0 < N; r0 += plan.chunk_rows) {
      const int64_t n = std::min(plan.chunk_rows, N - r0);
      g.M = n;
      g.A = static_cast<const char*>(a.raw()) + r0 * a_row_bytes;
      g.C = rows_ws.raw(), g.ldc = plan.stride;
      cuda::gemm(g);
      char* dst = static_cast<char*>(out.raw()) + r0 * OC * out_elem;
      if (out.dtype() == DType::f32)
        cuda::copy_rows(dst, OC * 4, rows_ws.raw(), plan.stride * 4, OC * 4, n);
      else
        cuda::convert_rows(dst, detail::elem_of(out), OC, rows_ws.raw(), cuda::Elem::f32, plan.stride, n, OC);
    }
  }
}

void linear_backward_cuda(Tensor* dinp, Tensor& dweight, Tensor* dbias, const Tensor& dout, const Tensor& inp,
                          const Tensor& weight, GradWrite dinp_write, GradWrite dweight_write) {
  const Device dev = dweight.device();
  detail::check_f32_on(dweight, dev, "dweight");
  detail::check_f32_on(dout, dev, "dout");
  detail::check_float_on(weight, dev, "linear weight");
  detail::check_float_on(inp, dev, "linear inp");
  const DType compute = weight.dtype();
  ZT_CHECK(inp.dtype() == DType::f32 || inp.dtype() == compute, "linear input {} with {} weights",
           dtype_name(inp.dtype()), dtype_name(compute));
  const int64_t N = rows(inp), C = cols(inp), OC = weight.dim(0);
  ZT_CHECK(weight.ndim() == 2 && weight.dim(1) == C && rows(dout) == N && cols(dout) == OC && dweight.numel() == OC * C,
           "linear backward: inp {} weight {} dout {} dweight {}", inp.shape_str(), weight.shape_str(),
           dout.shape_str(), dweight.shape_str());
  if (dinp) {
    detail::check_f32_on(*dinp, dev, "dinp");
    detail::check_same_numel(*dinp, inp, "linear dinp");
  }
  if (dbias) {
    detail::check_f32_on(*dbias, dev, "dbias");
    ZT_CHECK(dbias->numel() == OC, "linear dbias {}", dbias->shape_str());
  }
  if constexpr (detail::kWithCuda) {
    const auto [dout_c, ld_dout] = device_rows_operand(dout, compute);
    const cuda::Elem ab = detail::elem_of(weight);
    if (dinp) {  // dinp (N,C) += dout (N,OC) @ weight (OC,C), or = with overwrite
      // With dout's rows padded, the sum runs over the padded width too (an aligned K for
      // cuBLASLt): against a copy of the weight with as many rows, the extra ones zero. The
      // added terms are 0 x 0.
      Tensor padded_weight;
      if (ld_dout != OC) {
        padded_weight = Tensor::empty({ld_dout, C}, compute, MemTag::workspace, dev);
        padded_weight.view(0, {OC, C}).copy_from(weight);
        padded_weight.view(OC * C, {ld_dout - OC, C}).zero_();
      }
      cuda::GemmArgs g;
      g.M = N, g.N = C, g.K = ld_dout;
      g.A = dout_c.raw(), g.lda = ld_dout, g.B = padded_weight.defined() ? padded_weight.raw() : weight.raw();
      g.ldb = C, g.ab_type = ab;
      g.C = dinp->raw(), g.ldc = C, g.beta = beta_of(dinp_write);
      cuda::gemm(g);
    }
    // dweight (OC,C) += dout^T (OC,N) @ inp (N,C), accumulated in place in f32 (or = with overwrite).
    const Tensor inp_c = device_operand(inp, compute);
    cuda::GemmArgs g;
    g.trans_a = true;
    g.M = OC, g.N = C, g.K = N;
    g.A = dout_c.raw(), g.lda = ld_dout, g.B = inp_c.raw(), g.ldb = C, g.ab_type = ab;
    g.C = dweight.raw(), g.ldc = C, g.beta = beta_of(dweight_write);
    cuda::gemm(g);
    if (dbias) {
      Tensor scratch = Tensor::empty({cuda::column_sums_scratch(N, OC)}, DType::f32, MemTag::workspace, dev);
      cuda::colsum_accumulate(dbias->data<float>(), dout.data<float>(), N, OC, scratch.data<float>());
    }
  }
}

}  // namespace

int64_t device_dout_row_stride(int64_t cols, DType compute) {
  const int64_t per_16_bytes = 16 / static_cast<int64_t>(dtype_size(compute));
  return (cols + per_16_bytes - 1) / per_16_bytes * per_16_bytes;
}

namespace {
// ZT_CUDA_LINEAR_OUT, read on every call so that a test or benchmark can switch it.
bool device_aligned_out_rows_chosen() {
  const char* choice = std::getenv("ZT_CUDA_LINEAR_OUT");
  const std::string_view rows = choice ? choice : "direct";
  if (rows == "direct") return false;
  ZT_CHECK(rows == "aligned", "ZT_CUDA_LINEAR_OUT={} is not one of direct (the default), aligned", rows);
  return true;
}
}  // namespace

DeviceOutRows device_out_rows(int64_t rows, int64_t cols) {
  const int64_t stride = (cols + 3) / 4 * 4;
  if (stride == cols || !device_aligned_out_rows_chosen()) return {cols, rows};
  // At most kChunkBytes of workspace (rows in multiples of 128 where that fits): GEMMs of
  // 1280 x 50257 x 768 still fill an H200.
  constexpr int64_t kChunkBytes = int64_t{256} << 20;
  int64_t chunk = std::max<int64_t>(1, kChunkBytes / (stride * 4));
  if (chunk >= 128) chunk = chunk / 128 * 128;
  return {stride, std::min(rows, chunk)};
}

void linear_forward(Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor* bias) {
  if (detail::on_cuda(out, "linear_forward")) return linear_forward_cuda(out, inp, weight, bias);
  detail::F32Output o(out, "linear out");
  const DType compute = compute_dtype_of(weight, inp);
  const int64_t N = rows(inp), C = cols(inp), OC = weight.dim(0);
  ZT_CHECK(weight.ndim() == 2 && weight.dim(1) == C && rows(out) == N && cols(out) == OC,
           "linear: inp {} weight {} out {}", inp.shape_str(), weight.shape_str(), out.shape_str());
  if (bias) {
    check_f32_cpu(*bias, "bias");
    ZT_CHECK(bias->numel() == OC, "linear bias {} for {} outputs", bias->shape_str(), OC);
  }
  const GemmOperand a(inp, compute), w(weight, compute);
  // Bias and the bf16 rounding of out run in the GEMM's epilogue (the f32 workspace is scratch
  // then): no passes of their own.
  cpu::Epilogue e;
  e.bias = bias ? bias->data<float>() : nullptr;
  if (out.dtype() == DType::bf16) e.bf16_out = out.data<uint16_t>(), e.ldo = OC;
  gemm(false, true, N, OC, C, a, C, w, C, 0.f, o.data(), OC, e);
  if (!e.bf16_out) o.store();
}

void linear_backward(Tensor* dinp, Tensor& dweight, Tensor* dbias, const Tensor& dout,
                     const Tensor& inp, const Tensor& weight, GradWrite dinp_write, GradWrite dweight_write) {
  if (detail::on_cuda(dweight, "linear_backward"))
    return linear_backward_cuda(dinp, dweight, dbias, dout, inp, weight, dinp_write, dweight_write);
  const DType compute = compute_dtype_of(weight, inp);
  check_f32_cpu(dout, "dout");
  check_f32_cpu(dweight, "dweight");
  const int64_t N = rows(inp), C = cols(inp), OC = weight.dim(0);
  ZT_CHECK(weight.ndim() == 2 && weight.dim(1) == C && rows(dout) == N && cols(dout) == OC && dweight.numel() == OC * C,
           "linear backward: inp {} weight {} dout {} dweight {}", inp.shape_str(), weight.shape_str(),
           dout.shape_str(), dweight.shape_str());
  float* dbias_sum = nullptr;
  if (dbias) {
    check_f32_cpu(*dbias, "dbias");
    ZT_CHECK(dbias->numel() == OC, "linear dbias {}", dbias->shape_str());
    dbias_sum = dbias->data<float>();
  }
  // Read by both GEMMs; the bias gradient is dout's column sums, taken in the same pass. With
  // enough rows the weight gradient is summed by the row blocks that round dout (see
  // kMinRowsPerBlock), and each thread reads only rows it wrote.
  const cpu::RowBlocks blocks(N);
  const int64_t partials = (blocks.count - 1) * OC * C;
  const bool by_row_blocks = compute == DType::bf16 && blocks.count > 1 && N >= kMinRowsPerBlock * blocks.count &&
                             partials * 4 <= kRoundOnceMaxBytes;
  const GemmOperand dout_c = GemmOperand::shared(dout, compute, dbias_sum, by_row_blocks);
  if (dinp) {
    check_f32_cpu(*dinp, "dinp");
    detail::check_same_numel(*dinp, inp, "linear dinp");
    gemm(false, false, N, C, OC, dout_c, OC, GemmOperand(weight, compute), C, beta_of(dinp_write), dinp->data<float>(),
         C);
  }
  // dweight (OC,C) += dout^T (OC,N) @ inp (N,C), or = with overwrite.
  const float dweight_beta = beta_of(dweight_write);
  const GemmOperand inp_c(inp, compute);
  if (by_row_blocks && dout_c.bf16_storage()) {  // dout is f32: the copy was made
    Tensor scratch = Tensor::empty({partials}, DType::f32, MemTag::workspace);
    cpu::gemm_bf16_tn_row_blocks(OC, C, N, dout_c.as_bf16(), OC, inp_c.as_bf16(), C, dweight_beta,
                                 dweight.data<float>(), C, scratch.data<float>());
    return;
  }
  gemm(true, false, OC, C, N, dout_c, OC, inp_c, C, dweight_beta, dweight.data<float>(), C);
}

// Each kernel below checks its tensors once, against the device of its first tensor, then
// runs on that device.

void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& inp,
                       const Tensor& weight, const Tensor* bias, float eps) {
  const bool cuda = detail::on_cuda(out, "layernorm_forward");
  const Device dev = out.device();
  const int64_t N = rows(inp), C = cols(inp);
  detail::check_float_on(out, dev, "layernorm out");
  check_f32_each(dev, {{&inp, "layernorm inp"}, {&weight, "layernorm weight"}, {&mean, "layernorm mean"},
                       {&rstd, "layernorm rstd"}, {bias, "layernorm bias"}});
  detail::check_same_numel(out, inp, "layernorm out");
  ZT_CHECK(weight.numel() == C && mean.numel() == N && rstd.numel() == N && (!bias || bias->numel() == C),
           "layernorm shapes: inp {}", inp.shape_str());
  const float* b = detail::f32_or_null(bias);
  if (cuda) {
    if constexpr (detail::kWithCuda)
      cuda::layernorm_forward(out.raw(), detail::elem_of(out), mean.data<float>(), rstd.data<float>(),
                              inp.data<float>(), weight.data<float>(), b, N, C, eps);
    return;
  }
  if (out.dtype() == DType::bf16) {
    cpu::layernorm_forward(detail::bf16_data(out), mean.data<float>(), rstd.data<float>(), inp.data<float>(),
                           weight.data<float>(), b, N, C, eps);
    return;
  }
  detail::F32Output o(out, "layernorm out");
  cpu::layernorm_forward(o.data(), mean.data<float>(), rstd.data<float>(), inp.data<float>(), weight.data<float>(), b,
                         N, C, eps);
  o.store();
}

void layernorm_backward(Tensor& dinp, Tensor& dweight, Tensor* dbias, const Tensor& dout,
                        const Tensor& inp, const Tensor& weight, const Tensor& mean,
                        const Tensor& rstd) {
  const bool cuda = detail::on_cuda(dinp, "layernorm_backward");
  const Device dev = dinp.device();
  const int64_t N = rows(inp), C = cols(inp);
  check_f32_each(dev, {{&dinp, "layernorm dinp"}, {&dweight, "layernorm dweight"}, {dbias, "layernorm dbias"},
                       {&dout, "layernorm dout"}, {&inp, "layernorm inp"}, {&weight, "layernorm weight"},
                       {&mean, "layernorm mean"}, {&rstd, "layernorm rstd"}});
  detail::check_same_numel(dinp, inp, "layernorm dinp");
  detail::check_same_numel(dout, inp, "layernorm dout");
  ZT_CHECK(dweight.numel() == C && weight.numel() == C && (!dbias || dbias->numel() == C) && mean.numel() == N &&
               rstd.numel() == N,
           "layernorm backward shapes: inp {} weight {} dweight {}", inp.shape_str(), weight.shape_str(),
           dweight.shape_str());
  if (cuda) {
    if constexpr (detail::kWithCuda) {
      Tensor scratch = Tensor::empty({cuda::column_sums_scratch(N, C)}, DType::f32, MemTag::workspace, dev);
      cuda::layernorm_backward(dinp.data<float>(), dweight.data<float>(), detail::f32_or_null(dbias),
                               dout.data<float>(), inp.data<float>(), weight.data<float>(), mean.data<float>(),
                               rstd.data<float>(), N, C, scratch.data<float>());
    }
    return;
  }
  cpu::layernorm_backward(dinp.data<float>(), dweight.data<float>(), detail::f32_or_null(dbias), dout.data<float>(),
                          inp.data<float>(), weight.data<float>(), mean.data<float>(), rstd.data<float>(), N, C);
}

void rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& inp, const Tensor& weight, float eps) {
  const bool cuda = detail::on_cuda(out, "rmsnorm_forward");
  const Device dev = out.device();
  const int64_t N = rows(inp), C = cols(inp);
  detail::check_float_on(out, dev, "rmsnorm out");
  check_f32_each(dev, {{&inp, "rmsnorm inp"}, {&weight, "rmsnorm weight"}, {&rstd, "rmsnorm rstd"}});
  detail::check_same_numel(out, inp, "rmsnorm out");
  ZT_CHECK(weight.numel() == C && rstd.numel() == N, "rmsnorm shapes: inp {}", inp.shape_str());
  if (cuda) {
    if constexpr (detail::kWithCuda)
      cuda::rmsnorm_forward(out.raw(), detail::elem_of(out), rstd.data<float>(), inp.data<float>(),
                            weight.data<float>(), N, C, eps);
    return;
  }
  if (out.dtype() == DType::bf16) {
    cpu::rmsnorm_forward(detail::bf16_data(out), rstd.data<float>(), inp.data<float>(), weight.data<float>(), N, C, eps);
    return;
  }
  detail::F32Output o(out, "rmsnorm out");
  cpu::rmsnorm_forward(o.data(), rstd.data<float>(), inp.data<float>(), weight.data<float>(), N, C, eps);
  o.store();
}

void rmsnorm_backward(Tensor& dinp, Tensor& dweight, const Tensor& dout, const Tensor& inp,
                      const Tensor& weight, const Tensor& rstd) {
  const bool cuda = detail::on_cuda(dinp, "rmsnorm_backward");
  const Device dev = dinp.device();
  const int64_t N = rows(inp), C = cols(inp);
  check_f32_each(dev, {{&dinp, "rmsnorm dinp"}, {&dweight, "rmsnorm dweight"}, {&dout, "rmsnorm dout"},
                       {&inp, "rmsnorm inp"}, {&weight, "rmsnorm weight"}, {&rstd, "rmsnorm rstd"}});
  detail::check_same_numel(dinp, inp, "rmsnorm dinp");
  detail::check_same_numel(dout, inp, "rmsnorm dout");
  ZT_CHECK(dweight.numel() == C && weight.numel() == C && rstd.numel() == N,
           "rmsnorm backward shapes: inp {} weight {} dweight {}", inp.shape_str(), weight.shape_str(),
           dweight.shape_str());
  if (cuda) {
    if constexpr (detail::kWithCuda) {
      Tensor scratch = Tensor::empty({cuda::column_sums_scratch(N, C)}, DType::f32, MemTag::workspace, dev);
      cuda::rmsnorm_backward(dinp.data<float>(), dweight.data<float>(), dout.data<float>(), inp.data<float>(),
                             weight.data<float>(), rstd.data<float>(), N, C, scratch.data<float>());
    }
    return;
  }
  cpu::rmsnorm_backward(dinp.data<float>(), dweight.data<float>(), dout.data<float>(), inp.data<float>(),
                        weight.data<float>(), rstd.data<float>(), N, C);
}

void gelu_forward(Tensor& out, const Tensor& inp) {
  const bool cuda = detail::on_cuda(out, "gelu_forward");
  detail::check_float_on(out, out.device(), "gelu out");
  detail::check_float_on(inp, out.device(), "gelu inp");
  detail::check_same_numel(out, inp, "gelu");
  if (cuda) {
    if constexpr (detail::kWithCuda)
      cuda::gelu_forward(out.raw(), detail::elem_of(out), inp.raw(), detail::elem_of(inp), inp.numel());
    return;
  }
  if (inp.dtype() == DType::bf16 && out.dtype() == DType::bf16) {
    cpu::gelu_forward(detail::bf16_data(out), detail::bf16_data(inp), inp.numel());
    return;
  }
  const detail::F32Input in(inp, "gelu inp");
  detail::F32Output o(out, "gelu out");
  cpu::gelu_forward(o.data(), in.data(), inp.numel());
  o.store();
}

void gelu_backward(Tensor& dinp, const Tensor& dout, const Tensor& inp, GradWrite write) {
  const bool accumulate = write == GradWrite::accumulate;
  const bool cuda = detail::on_cuda(dinp, "gelu_backward");
  check_f32_each(dinp.device(), {{&dinp, "gelu dinp"}, {&dout, "gelu dout"}});
  detail::check_float_on(inp, dinp.device(), "gelu backward inp");
  detail::check_same_numel(dinp, inp, "gelu dinp");
  detail::check_same_numel(dout, inp, "gelu dout");
  if (cuda) {
    if (!accumulate) dinp.zero_();  // the CUDA kernel accumulates
    if constexpr (detail::kWithCuda)
      cuda::gelu_backward(dinp.data<float>(), dout.data<float>(), inp.raw(), detail::elem_of(inp), inp.numel());
    return;
  }
  if (inp.dtype() == DType::bf16) {
    cpu::gelu_backward(dinp.data<float>(), dout.data<float>(), detail::bf16_data(inp), inp.numel(), accumulate);
    return;
  }
  const detail::F32Input in(inp, "gelu backward inp");
  cpu::gelu_backward(dinp.data<float>(), dout.data<float>(), in.data(), inp.numel(), accumulate);
}

void swiglu_forward(Tensor& out, const Tensor& inp) {
  const bool cuda = detail::on_cuda(out, "swiglu_forward");
  detail::check_float_on(out, out.device(), "swiglu out");
  detail::check_float_on(inp, out.device(), "swiglu inp");
  const int64_t N = rows(inp), F = cols(inp) / 2;
  ZT_CHECK(cols(inp) % 2 == 0 && rows(out) == N && cols(out) == F, "swiglu: inp {} out {}", inp.shape_str(),
           out.shape_str());
  if (cuda) {
    if constexpr (detail::kWithCuda)
      cuda::swiglu_forward(out.raw(), detail::elem_of(out), inp.raw(), detail::elem_of(inp), N, F);
    return;
  }
  if (inp.dtype() == DType::bf16 && out.dtype() == DType::bf16) {
    cpu::swiglu_forward(detail::bf16_data(out), detail::bf16_data(inp), N, F);
    return;
  }
  const detail::F32Input in(inp, "swiglu inp");
  detail::F32Output o(out, "swiglu out");
  cpu::swiglu_forward(o.data(), in.data(), N, F);
  o.store();
}

void swiglu_backward(Tensor& dinp, const Tensor& dout, const Tensor& inp, GradWrite write) {
  const bool accumulate = write == GradWrite::accumulate;
  const bool cuda = detail::on_cuda(dinp, "swiglu_backward");
  check_f32_each(dinp.device(), {{&dinp, "swiglu dinp"}, {&dout, "swiglu dout"}});
  detail::check_float_on(inp, dinp.device(), "swiglu backward inp");
  const int64_t N = rows(inp), F = cols(inp) / 2;
  ZT_CHECK(cols(inp) % 2 == 0, "swiglu: inp {} has an odd last dim", inp.shape_str());
  detail::check_same_numel(dinp, inp, "swiglu dinp");
  ZT_CHECK(dout.numel() == N * F, "swiglu dout {}", dout.shape_str());
  if (cuda) {
    if (!accumulate) dinp.zero_();  // the CUDA kernel accumulates
    if constexpr (detail::kWithCuda)
      cuda::swiglu_backward(dinp.data<float>(), dout.data<float>(), inp.raw(), detail::elem_of(inp), N, F);
    return;
  }
  if (inp.dtype() == DType::bf16) {
    cpu::swiglu_backward(dinp.data<float>(), dout.data<float>(), detail::bf16_data(inp), N, F, accumulate);
    return;
  }
  const detail::F32Input in(inp, "swiglu backward inp");
  cpu::swiglu_backward(dinp.data<float>(), dout.data<float>(), in.data(), N, F, accumulate);
}

void embedding_forward(Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor* wpe,
                       int64_t T) {
  const bool cuda = detail::on_cuda(out, "embedding_forward");
  const Device dev = out.device();
  detail::check_i32_on(tokens, dev, "embedding tokens");
  check_f32_each(dev, {{&out, "embedding out"}, {&wte, "embedding wte"}, {wpe, "embedding wpe"}});
  ZT_CHECK(wte.ndim() == 2, "embedding: wte {} must be (V, C)", wte.shape_str());
  const int64_t N = tokens.numel(), C = wte.dim(1);
  ZT_CHECK(T > 0 && out.numel() == N * C && N % T == 0 &&
               (!wpe || (wpe->ndim() == 2 && wpe->dim(0) >= T && wpe->dim(1) == C)),
           "embedding: tokens {} wte {} wpe {} out {} T {}", tokens.shape_str(), wte.shape_str(),
           wpe ? wpe->shape_str() : "none", out.shape_str(), T);
  if (cuda) {
    if constexpr (detail::kWithCuda)
      cuda::embedding_forward(out.data<float>(), tokens.data<int32_t>(), wte.data<float>(), detail::f32_or_null(wpe),
                              N, T, C);
    return;
  }
  check_token_range(tokens, wte.dim(0));
  cpu::embedding_forward(out.data<float>(), tokens.data<int32_t>(), wte.data<float>(), detail::f32_or_null(wpe), N, T,
                         C);
}

void embedding_backward(Tensor& dwte, Tensor* dwpe, const Tensor& dout, const Tensor& tokens,
                        int64_t T) {
  const bool cuda = detail::on_cuda(dwte, "embedding_backward");
  const Device dev = dwte.device();
  detail::check_i32_on(tokens, dev, "embedding tokens");
  check_f32_each(dev, {{&dwte, "embedding dwte"}, {&dout, "embedding dout"}, {dwpe, "embedding dwpe"}});
  ZT_CHECK(dwte.ndim() == 2, "embedding backward: dwte {} must be (V, C)", dwte.shape_str());
  const int64_t N = tokens.numel(), C = dwte.dim(1);
  ZT_CHECK(T > 0 && dout.numel() == N * C && N % T == 0 &&
               (!dwpe || (dwpe->ndim() == 2 && dwpe->dim(0) >= T && dwpe->dim(1) == C)),
           "embedding backward: tokens {} dout {} dwte {} T {}", tokens.shape_str(), dout.shape_str(),
           dwte.shape_str(), T);
  if (cuda) {
    ZT_CHECK(N < (int64_t{1} << 31), "embedding backward: {} rows are past the device sort's int32 row numbers", N);
    if constexpr (detail::kWithCuda) {
      const int64_t words = (static_cast<int64_t>(cuda::embedding_backward_scratch_bytes(N)) + 3) / 4;
      Tensor scratch = Tensor::empty({words}, DType::i32, MemTag::workspace, dev);
      cuda::embedding_backward(dwte.data<float>(), detail::f32_or_null(dwpe), dout.data<float>(),
                               tokens.data<int32_t>(), N, T, C, scratch.raw());
    }
    return;
  }
  check_token_range(tokens, dwte.dim(0));
  cpu::embedding_backward(dwte.data<float>(), detail::f32_or_null(dwpe), dout.data<float>(), tokens.data<int32_t>(),
                          N, T, C);
}

namespace {

// Both cross-entropy kernels (dlogits null: the loss alone).
void cross_entropy(Tensor& losses, Tensor* dlogits, const Tensor& logits, const Tensor& targets, float dloss_scale,
                   const char* kernel) {
  const bool cuda = detail::on_cuda(losses, kernel);
  const Device dev = losses.device();
  detail::check_i32_on(targets, dev, "cross entropy targets");
  check_f32_each(dev, {{&logits, "cross entropy logits"}, {dlogits, "cross entropy dlogits"},
                       {&losses, "cross entropy losses"}});
  const int64_t N = rows(logits), V = cols(logits);
  if (dlogits) detail::check_same_numel(*dlogits, logits, "dlogits");
  ZT_CHECK(losses.numel() == N && targets.numel() == N, "cross entropy: logits {} targets {}", logits.shape_str(),
           targets.shape_str());
  float* grad = detail::f32_or_null(dlogits);
  if (cuda) {
    if constexpr (detail::kWithCuda)
      cuda::cross_entropy(losses.data<float>(), grad, logits.data<float>(), targets.data<int32_t>(), N, V,
                          dloss_scale);
    return;
  }
  check_token_range(targets, V);
  cpu::cross_entropy(losses.data<float>(), grad, logits.data<float>(), targets.data<int32_t>(), N, V, dloss_scale);
}

}  // namespace

void cross_entropy_forward(Tensor& losses, const Tensor& logits, const Tensor& targets) {
  cross_entropy(losses, nullptr, logits, targets, 0.f, "cross_entropy_forward");
}

void cross_entropy_forward_backward(Tensor& losses, Tensor& dlogits, const Tensor& logits,
                                    const Tensor& targets, float dloss_scale) {
  cross_entropy(losses, &dlogits, logits, targets, dloss_scale, "cross_entropy_forward_backward");
}

}  // namespace zt
