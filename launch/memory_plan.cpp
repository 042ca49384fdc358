#include "launch/memory_plan.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/kernels.h"
#include "launch/train_setup.h"
#include "model/transformer.h"
#include "parallel/ring_collectives.h"

namespace zt {

namespace {

int64_t rounded(int64_t bytes) { return static_cast<int64_t>(CpuAllocator::rounded_size(static_cast<size_t>(bytes))); }

int64_t& tag(PlanBytes& p, MemTag t) { return p.by_tag[static_cast<int>(t)]; }

int64_t dtype_bytes(Precision p) { return p == Precision::fp32 ? 4 : 2; }

std::string gib(double bytes) { return fmt::format("{:.1f} GiB", bytes / 1073741824.0); }

// The widths the plan's parts share: tokens per micro-batch, model width, MLP width, vocab, a
// qkv row, attention's output row, the MLP's first linear (two of F for SwiGLU).
struct Widths {
  int64_t N, C, F, V, qkv, q_out, ff;
};
Widths widths_of(const PlanInput& in) {
  const ModelSpec& s = in.spec;
  const int64_t D = s.head_dim();
  return {in.micro_batch * in.seq_len, s.d_model, s.d_ff, s.vocab_size, (s.n_head + 2 * s.n_kv_head) * D,
          s.n_head * D, s.gpt2() ? s.d_ff : 2 * s.d_ff};
}

// On the CPU, beside the blocks' backward scratch: the low-precision kernels' temporaries (M:
// routed MoE slots, n_moe: MoE blocks).
int64_t host_kernel_workspace(const PlanInput& in, int64_t Nc, int64_t M, int64_t n_moe) {
  const ModelSpec& s = in.spec;
  const auto [N, C, F, V, qkv, q_out, ff] = widths_of(in);
  const bool lowp = in.compute != Precision::fp32;
  int64_t extra = 0;
  // Low precision: kernels widen what they read into f32 temporaries and compute what they
  // store in f32 first; the largest set alive in one kernel counts (activation buffers live
  // across steps, so a forward's temporaries meet them at their full size). A linear
  // computes its output in f32 (the fc's is the largest); in f16 only, attention's forward
  // widens q/k/v and computes its output (its log-sum-exp is f32 already), its backward
  // widens q/k/v and the output, and the MLP's activation widens the pre-activation and
  // computes its output (in bf16 those read and write bf16 directly, as the norms do); the
  // gate widens its two inputs and computes its output; the conv mixer widens its input.
  // (Attention's score tiles, and in bf16 its widened tiles, are per-thread scratch outside
  // the allocator.)
  if (lowp) {
    const bool bf16 = in.compute == Precision::bf16;
    const int64_t mlp = rounded(Nc * ff * 4) + (bf16 ? 0 : rounded(Nc * F * 4));
    const int64_t attention = bf16 ? 0 : rounded(Nc * qkv * 4) + rounded(Nc * q_out * 4);
    int64_t widened = std::max(attention, mlp);
    if (s.attn_gate) widened = std::max(widened, 3 * rounded(Nc * q_out * 4));
    if (s.workers()) widened = std::max(widened, rounded(N * C * 4));
    if (n_moe > 0) widened = std::max(widened, rounded(M * 2 * F * 4) + rounded(M * F * 4));
    extra += widened;
  }
  // fp16: a linear's backward holds its dout, its input and its weight rounded through fp16
  // and held as f32 (each rounded in one pass, no f16 temporary); the largest linear sets
  // the peak. (bf16 GEMMs round their operands while packing them, into buffers outside the
  // allocator; a linear's backward also holds its dout rounded to bf16, at most 4 MiB, while
  // its GEMMs run: not counted, as the tiny configs' measured peaks do not move with it and
  // at gpt2-124m it is under 0.1% of the peak.)
  if (in.compute == Precision::fp16) {
    // in, out, rows: the block's linears run on the Nc core rows, the head on all N
    const std::vector<std::array<int64_t, 3>> linears = {{C, qkv, Nc}, {q_out, C, Nc}, {C, ff, Nc}, {F, C, Nc}, {C, V, N}};
    int64_t worst = 0;
    for (const auto& [cin, cout, n] : linears)
      worst = std::max(worst, rounded(n * cout * 4) + rounded(n * cin * 4) + rounded(cout * cin * 4));
    extra += worst;
  }
  return extra;
}

// On a GPU (core/kernels on core/cuda/), beside the blocks' backward scratch: cuBLASLt's
// workspace, kept per device from the first GEMM, and the largest transient of one kernel
// call. Device kernels read and write bf16/f16 activations directly (no widened copies); a
// linear computes a low-precision output in f32 first (forward) and rounds its f32 dout into
// a compute-dtype copy for its two GEMMs (backward; the head's, N x vocab, is the largest),
// with its bias's column-sum partials beside it; a forward whose rows are misaligned (the
// head's, 50257 floats) writes them through an aligned f32 chunk; the norms' weight gradients
// take column-sum partials, attention's backward its delta rows.
int64_t device_kernel_workspace(const PlanInput& in, int64_t Nc) {
  const ModelSpec& s = in.spec;
  const auto [N, C, F, V, qkv, q_out, ff] = widths_of(in);
  const bool lowp = in.compute != Precision::fp32;
  const int64_t cublaslt = rounded(int64_t{32} << 20);  // core/cuda/gemm.cpp's kWorkspaceBytes
  auto colsum = [](int64_t rows, int64_t cols) { return rounded(2 * std::min<int64_t>(rows, 256) * cols * 4); };
  struct Linear {
    int64_t out, in, rows;
    bool bias, lowp_out;  // lowp_out: its output is stored in the compute dtype
  };
  const bool bias = s.gpt2();
  // qkv, attention's projection, the MLP's two (MoE is CPU-only), the head
  const Linear linears[] = {{qkv, C, Nc, bias || s.attn_bias, true}, {C, q_out, Nc, bias, false},
                            {ff, C, Nc, bias, true}, {C, F, Nc, bias, false}, {V, C, N, false, false}};
  int64_t transient = std::max(colsum(Nc, C), rounded(in.micro_batch * s.n_head * s.core_rows(in.seq_len) * 4));
  for (const Linear& l : linears) {
    // forward: f32 rows (misaligned ones through an aligned chunk), rounded into a lowp out
    const DeviceOutRows fwd = device_out_rows(l.rows, l.out);
    if (fwd.stride != l.out)
      transient = std::max(transient, rounded(fwd.chunk_rows * fwd.stride * 4));
    else if (lowp && l.lowp_out)
      transient = std::max(transient, rounded(l.rows * l.out * 4));
    // bf16 and f16 alike: 2 bytes, rows padded to 16 bytes; where they are padded, dinp's GEMM
    // reads a weight copy padded alike (freed before the bias's column sums)
    const int64_t stride = device_dout_row_stride(l.out, DType::bf16);
    const int64_t dout_copy = lowp ? rounded(l.rows * stride * 2) : 0;
    const int64_t weight_copy = lowp && stride != l.out ? rounded(stride * l.in * 2) : 0;
    transient = std::max(transient, dout_copy + std::max(weight_copy, l.bias ? colsum(l.rows, l.out) : int64_t{0}));
  }
  return cublaslt + transient;
}

}  // namespace

PlanInput plan_input(const Config& cfg, int world) {
  PlanInput in;
  in.spec = model_spec(cfg);
  in.world = world;
  in.stage = static_cast<int>(cfg.parallel.zero_stage);
  in.micro_batch = cfg.train.micro_batch;
  in.seq_len = cfg.data.seq_len;
  in.compute = cfg.precision.compute;
  in.reduce = cfg.precision.reduce;
  in.bucket_mb = cfg.parallel.bucket_mb;
  in.checkpointed = checkpointed_layers(cfg.memory, in.spec.n_layer);
  in.optimizer_states = cfg.optim.name == OptimName::adamw ? 2 : cfg.optim.momentum > 0 ? 1 : 0;
  in.cuda = cfg.runtime.device == RuntimeDevice::cuda;
  return in;
}

void check_plan_fits(const PlanInput& in, double available, const std::string& where) {
  const ModelSpec& s = in.spec;
  const double L = double(s.n_layer), C = double(s.d_model), F = double(s.d_ff), V = double(s.vocab_size);
  const double tokens = double(in.micro_batch) * double(in.seq_len);
  // An upper estimate in doubles: ~4C^2 + 3CF weights per block, fp32 master, grads and
  // optimizer states, and per token ~20C + 4F saved floats per block plus the logits.
  const double params = L * (4 * C * C + 3 * C * F) + 2 * V * C;
  const double rough_state = params * 4.0 * (2 + in.optimizer_states) / (in.stage >= 1 ? in.world : 1);
  const double rough_act = tokens * 4.0 * (L * (20 * C + 4 * F) + 3 * V);
  double need = rough_state + rough_act, act = rough_act, state = rough_state;
  if (need < 0x1p60) {  // small enough for the exact plan's int64 arithmetic
    const PlanBytes p = plan_memory(in);
    need = double(p.total());
    act = double(p.by_tag[static_cast<int>(MemTag::activations)] + p.by_tag[static_cast<int>(MemTag::workspace)]);
    state = need - act;
  }
  if (available <= 0 || need <= available) return;
  fail("this run needs about {} per rank (model state {}, activations and workspace {}: train.micro_batch {} x "
       "data.seq_len {} tokens, model.n_layer {}, model.d_model {}, vocab {}) but {} is available {}; lower "
       "train.micro_batch or data.seq_len, shrink the model, raise parallel.zero_stage or set "
       "memory.activation_checkpointing (`zt plan CONFIG` shows each choice)",
       gib(need), gib(state), gib(act), in.micro_batch, in.seq_len, s.n_layer, s.d_model, s.vocab_size, gib(available),
       where);
}

double available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream fields(line);
    std::string key;
    double kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

int64_t PlanBytes::total() const {
  int64_t t = 0;
  for (int64_t b : by_tag) t += b;
  return t;
}

PlanBytes plan_memory(const PlanInput& in) {
  const ModelSpec& s = in.spec;
  const int64_t W = in.world, B = in.micro_batch, T = in.seq_len, H = s.n_head;
  const auto [N, C, F, V, qkv, q_out, ff] = widths_of(in);
  PlanBytes p;

  // ---- model state ----------------------------------------------------------------------
  Transformer model(s);
  std::vector<int64_t> padded;
  for (const Unit* u : model.units()) padded.push_back((u->numel() + W - 1) / W * W);
  int64_t full = 0, largest = 0;
  for (int64_t n : padded) {
    full += n;
    largest = std::max(largest, n);
  }
  auto sum_rounded = [&](auto elems_of) {
    int64_t b = 0;
    for (int64_t n : padded) b += rounded(elems_of(n) * 4);
    return b;
  };
  const bool resident_params = in.stage < 3, lowp = in.compute != Precision::fp32;
  // Stages 2-3: the largest three units in a row in backward order (the running one and two
  // reductions in flight), the tied embedding left out (counted on its own). fp32 reductions
  // read the full grads themselves; bf16 ones a rounded copy (comm) with a bf16 output, and
  // only the running unit's fp32 grads are alive.
  const bool wire_bf16 = in.reduce == Precision::bf16;
  int64_t grads_window = 0, wire_window = 0, largest_grads = 0;
  {
    std::vector<int64_t> backward, wire;  // rounded bytes, backward order
    for (size_t i = padded.size(); i-- > (s.tie_embeddings ? 1 : 0);) {
      backward.push_back(rounded(padded[i] * 4));
      wire.push_back(rounded(padded[i] * 2) + rounded(padded[i] / W * 2));
      largest_grads = std::max(largest_grads, backward.back());
    }
    for (size_t i = 0; i < backward.size(); ++i) {
      int64_t g = 0, w = 0;
      for (size_t j = i; j < std::min(i + 3, backward.size()); ++j) g += backward[j], w += wire[j];
      grads_window = std::max(grads_window, g);
      wire_window = std::max(wire_window, w);
    }
  }
  // Stage 3 gathers the running unit's params and prefetches the next one's, and makes the
  // compute copy (bf16/fp16) of the running one only. In backward the full grads of the
  // running unit and of the reductions in flight are alive too, and a tied embedding's from
  // the head's backward on. Planned at the position, forward or backward, where gathered
  // params and full grads peak together, not each at its own peak.
  // Stages 2-3: a tied embedding's full grads live from the head's backward to the embedding's.
  const int64_t tied_embed_grads = s.tie_embeddings ? rounded(padded.front() * 4) : 0;
  // Stages 1-2 on host backends (MPI, Gloo) at W > 1: a reduce-scatter in flight holds two
  // pieces of our ring (parallel/ring_collectives.h). At stage 3 they were not part of the
  // measured peak (gpt2-124m, and the tiny configs of PlanAgainstMeasurement). Gloo's ranks on
  // one host all-reduce through the ring too, so their stage 0 holds the pieces as well: not
  // planned, since the plan does not know the launcher (8 MiB on gpt2-124m).
  const int64_t ring_pieces = (in.stage == 1 || in.stage == 2) && W > 1 && !in.cuda
                                  ? 2 * rounded(std::min(largest / W * (wire_bf16 ? 2 : 4), kRingPieceBytes))
                                  : 0;
  int64_t gathered = 0, full_grads = wire_bf16 ? largest_grads : grads_window;
  if (!resident_params) {
    const auto units = model.units();
    auto bytes_of = [&](const Unit* u, int64_t elem_bytes) {
      return rounded(padded[std::find(units.begin(), units.end(), u) - units.begin()] * elem_bytes);
    };
    int64_t best = -1;
    // In backward, a module whose backward reads no parameters (the embedding) is neither
    // gathered nor prefetched.
    auto consider = [&](const std::vector<Unit*>& order, const std::vector<bool>& gathers, bool backward) {
      auto grads_of = [&](size_t k) {
        return !backward || (s.tie_embeddings && order[k] == units.front()) ? 0 : bytes_of(order[k], 4);
      };
      auto params_of = [&](size_t k, int64_t elem_bytes) {
        return k < order.size() && gathers[k] ? bytes_of(order[k], elem_bytes) : 0;
      };
      for (size_t k = 0; k < order.size(); ++k) {
        const bool next_is_other = k + 1 < order.size() && order[k + 1] != order[k];  // one gather per unit
        int64_t held = params_of(k, 4) + (next_is_other ? params_of(k + 1, 4) : 0);
        if (lowp) held += params_of(k, dtype_bytes(in.compute));
        int64_t g = grads_of(k) + (backward ? tied_embed_grads : 0);
        if (!wire_bf16)  // two reductions in flight
          for (size_t j = 1; j <= 2 && j <= k; ++j) g += grads_of(k - j);
        if (held + g > best) best = held + g, gathered = held, full_grads = g;
      }
    };
    auto order = model.forward_order();
    auto reads = model.backward_reads_params();
    consider(order, std::vector<bool>(order.size(), true), false);
    std::reverse(order.begin(), order.end());
    std::reverse(reads.begin(), reads.end());
    consider(order, reads, true);
  }
  if (resident_params) {
    tag(p, MemTag::params) = sum_rounded([](int64_t n) { return n; });
    if (lowp) tag(p, MemTag::params) += sum_rounded([&](int64_t n) { return n * dtype_bytes(in.compute) / 4; });
  } else {
    tag(p, MemTag::params) = sum_rounded([&](int64_t n) { return n / W; }) + gathered;
  }
  int64_t comm = 128 + ring_pieces;
  switch (in.stage) {
    case 0:
      tag(p, MemTag::grads) = rounded(full * 4);  // one buffer, for contiguous buckets
      if (wire_bf16) {  // rounded copies of up to three buckets in a row are in flight
        const int64_t bucket_bytes = static_cast<int64_t>(in.bucket_mb * 1048576.0);
        std::vector<int64_t> wires;
        int64_t len = 0;
        for (size_t i = padded.size(); i-- > 0;) {
          len += padded[i];
          if (len * 4 >= bucket_bytes || i == 0) wires.push_back(rounded(len * 2)), len = 0;
        }
        int64_t window = 0;
        for (size_t i = 0; i < wires.size(); ++i) {
          int64_t w = 0;
          for (size_t j = i; j < std::min(i + 3, wires.size()); ++j) w += wires[j];
          window = std::max(window, w);
        }
        comm += window;
      }
      break;
    case 1:
      tag(p, MemTag::grads) = sum_rounded([](int64_t n) { return n; }) + sum_rounded([&](int64_t n) { return n / W; });
      if (wire_bf16) comm += wire_window;
      break;
    default: {
      // Shards, plus full grads while a unit's backward runs and while up to two reductions
      // are in flight, and the tied embedding's (stage 3: in full_grads where they peak).
      // (The reduced shards in flight are freed as each reduction lands.)
      tag(p, MemTag::grads) =
          sum_rounded([&](int64_t n) { return n / W; }) + (resident_params ? tied_embed_grads : 0) + full_grads;
      // At stage 3 a unit's gathered params are released just before its grads go to a
      // reduction, so the copies in flight peak with one unit fewer gathered than params'
      // own peak counts.
      if (wire_bf16) comm += in.stage == 3 ? std::max<int64_t>(0, wire_window - rounded(largest * 4)) : wire_window;
    }
  }
  tag(p, MemTag::optimizer) =
      in.optimizer_states * sum_rounded([&](int64_t n) { return in.stage == 0 ? n : n / W; });

  // ---- activations of one micro-batch ----------------------------------------------------
  // Under mixed precision everything a block saves except the residual stream (x2), the
  // norms' statistics and attention's log-sum-exp (B*H*T, f32) is stored in the compute
  // dtype (ab bytes). Nothing saved grows faster than T.
  const int64_t ab = lowp ? 2 : 4;
  // A WorkerTransformer's attention and MLP run on the Nc = B * T / k worker rows only; its
  // conv mixer saves a normed copy of all N rows (and its stats) and the gathered workers.
  const int64_t Tc = s.core_rows(T), Nc = B * Tc;
  int64_t set = rounded(Nc * C * ab) + 2 * rounded(Nc * 4) + rounded(Nc * qkv * ab) + rounded(B * H * Tc * 4) +
                rounded(Nc * q_out * ab) + rounded(Nc * C * 4) + rounded(Nc * C * ab) + 2 * rounded(Nc * 4) +
                rounded(Nc * ff * ab) + rounded(Nc * F * ab);
  if (s.attn_gate) set += 2 * rounded(Nc * q_out * ab);  // gate pre-activation, gated output
  if (s.workers()) set += rounded(N * C * ab) + 2 * rounded(N * 4) + rounded(Nc * C * 4);
  // An MoE block saves, instead of the MLP's pre-activation and activation, the router's
  // probabilities and choices and, per routed slot (M = Nc * top_k), the gathered input, the
  // experts' pre-activation, activation and output; the shared expert's as a dense MLP of SF.
  const int64_t E = s.n_experts, K = s.moe_top_k, M = Nc * K, SF = s.n_shared_experts * F;
  int64_t moe_set = set - rounded(Nc * ff * ab) - rounded(Nc * F * ab) + rounded(Nc * E * 4) + 3 * rounded(Nc * K * 4) +
                    rounded(M * 4) + rounded(M * C * ab) + rounded(M * 2 * F * ab) + rounded(M * F * ab) +
                    rounded(M * C * 4);
  if (SF > 0) moe_set += rounded(Nc * 2 * SF * ab) + rounded(Nc * SF * ab) + rounded(Nc * C * 4) + 2 * rounded(Nc * 4);
  int64_t saved = 0, shared_set = 0, n_moe = 0;
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const int64_t bytes = s.moe_layer(l) ? moe_set : set;
    n_moe += s.moe_layer(l);
    if (static_cast<size_t>(l) < in.checkpointed.size() && in.checkpointed[l])
      shared_set = std::max(shared_set, bytes);  // checkpointed blocks share the largest set
    else
      saved += bytes;
  }
  int64_t act = 2 * rounded(N * 4);                         // token ids and targets
  act += rounded(N * C * 4);                                // embedding output
  act += s.n_layer * rounded(N * C * 4) + saved + shared_set;  // block outputs, saved sets
  act += rounded(N * C * ab) + rounded(N * C * 4) + 2 * rounded(N * 4);  // final norm: out, dres, mean, rstd
  act += rounded(N * V * 4) + rounded(N * 4) + rounded(N * C * 4);  // logits (dlogits in place), losses, head dx
  tag(p, MemTag::activations) = act;

  // ---- workspace: block backward scratch, and fp16 GEMM operands -----------------------
  const bool dense_mlp = n_moe < s.n_layer;
  int64_t ws = rounded(Nc * C * 4) + rounded(Nc * q_out * 4) + rounded(Nc * qkv * 4);
  if (dense_mlp) ws += rounded(Nc * ff * 4) + rounded(Nc * F * 4);
  if (n_moe > 0) {  // MoE scratch: router (logits, their gradient, dprobs, dweights), per slot, shared, aux
    ws += 3 * rounded(Nc * E * 4) + rounded(Nc * K * 4) + 2 * rounded(M * C * 4) + rounded(M * F * 4) +
          rounded(M * 2 * F * 4) + rounded(B * 4);
    if (SF > 0)
      ws += rounded(Nc * SF * 4) + rounded(Nc * 2 * SF * 4) + rounded(Nc * C * 4) + 5 * rounded(Nc * 4);
  }
  if (s.attn_gate) ws += 2 * rounded(Nc * q_out * 4);               // dgate, d(ungated output)
  if (s.workers()) ws += rounded(N * C * 4) + rounded(Nc * C * 4);  // mixer scratch, worker rows
  ws += in.cuda ? device_kernel_workspace(in, Nc) : host_kernel_workspace(in, Nc, M, n_moe);
  tag(p, MemTag::workspace) = ws;
  tag(p, MemTag::comm) = comm;
  return p;
}

int64_t largest_micro_batch(PlanInput in, int64_t budget, int64_t limit) {
  auto fits = [&](int64_t b) {
    in.micro_batch = b;
    return plan_memory(in).total() <= budget;
  };
  if (!fits(1)) return 0;
  int64_t lo = 1, hi = 2;
  while (hi <= limit && fits(hi)) lo = hi, hi *= 2;
  hi = std::min(hi, limit + 1);
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace zt
