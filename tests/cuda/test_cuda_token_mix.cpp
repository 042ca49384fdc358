// The causal depthwise Conv1d and the Mixture-of-Experts routing kernels on the GPU against the
// CPU: router softmax/top-k and its backward, dispatch (computed through the host), the
// load-balancing loss, row gather and the weighted combine with its backward.
#include <cstring>

#include "tests/cuda/cuda_test_util.h"

namespace zt::testing {
namespace {

bool same_ints(const Tensor& a, const Tensor& b) {
  const Tensor x = a.device().is_cpu() ? a : to_cpu(a), y = b.device().is_cpu() ? b : to_cpu(b);
  return x.nbytes() == y.nbytes() && std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0;
}

TEST(CudaConv1d, ForwardAndBackwardMatchTheCpu) {
  ZT_REQUIRE_CUDA();
  const int64_t B = 3, T = 29, C = 37, K = 4;
  for (DType in_type : {DType::f32, DType::bf16}) {
    const std::string tag = std::string(" in ") + std::string(dtype_name(in_type));
    const Tensor inp = random_cpu({B * T, C}, 1, 1.f, in_type), w = random_cpu({C, 1, K}, 2), bias = random_cpu({C}, 3);
    const Tensor ginp = to_gpu(inp), gw = to_gpu(w), gbias = to_gpu(bias);
    Tensor out = Tensor::empty({B * T, C}, DType::f32), gout = to_gpu(out);
    causal_conv1d_forward(out, inp, w, &bias, T);
    causal_conv1d_forward(gout, ginp, gw, &gbias, T);
    expect_close(out, gout, kF32Tol, "conv forward" + tag);
    const Tensor dout = random_cpu({B * T, C}, 4);
    Tensor dinp = random_cpu({B * T, C}, 5), dw = random_cpu({C, 1, K}, 6), db = random_cpu({C}, 7);
    Tensor gdinp = to_gpu(dinp), gdw = to_gpu(dw), gdb = to_gpu(db);
    causal_conv1d_backward(dinp, dw, &db, dout, inp, w, T);
    causal_conv1d_backward(gdinp, gdw, &gdb, to_gpu(dout), ginp, gw, T);
    expect_close(dinp, gdinp, kF32Tol, "conv dinp" + tag);
    expect_close(dw, gdw, kF32Tol, "conv dweight" + tag);
    expect_close(db, gdb, kF32Tol, "conv dbias" + tag);
  }
}

TEST(CudaMoe, RouterDispatchAuxLossAndCombineMatchTheCpu) {
  ZT_REQUIRE_CUDA();
  const int64_t T = 11, N = 3 * T, E = 7, K = 2, C = 23;
  for (bool normalize : {false, true}) {
    const std::string tag = normalize ? " normalized" : "";
    const Tensor logits = random_cpu({N, E}, 10, 2.f);
    Tensor probs = Tensor::empty({N, E}, DType::f32), idx = Tensor::empty({N, K}, DType::i32),
           weights = Tensor::empty({N, K}, DType::f32);
    Tensor gprobs = to_gpu(probs), gidx = to_gpu(idx), gweights = to_gpu(weights);
    moe_router_forward(probs, idx, weights, logits, normalize);
    moe_router_forward(gprobs, gidx, gweights, to_gpu(logits), normalize);
    expect_close(probs, gprobs, kF32Tol, "router probs" + tag);
    EXPECT_TRUE(same_ints(idx, gidx)) << "router top-k" << tag;
    expect_close(weights, gweights, kF32Tol, "router weights" + tag);

    const Tensor dprobs = random_cpu({N, E}, 11), dweights = random_cpu({N, K}, 12);
    Tensor dlogits = random_cpu({N, E}, 13), gdlogits = to_gpu(dlogits);
    moe_router_backward(dlogits, &dprobs, dweights, probs, idx, normalize);
    const Tensor gdprobs = to_gpu(dprobs);
    moe_router_backward(gdlogits, &gdprobs, to_gpu(dweights), gprobs, gidx, normalize);
    expect_close(dlogits, gdlogits, kF32Tol, "router dlogits" + tag);

    Tensor rows = Tensor::empty({N * K}, DType::i32), slots = Tensor::empty({N, K}, DType::i32);
    Tensor grows = to_gpu(rows), gslots = to_gpu(slots);
    std::vector<int64_t> offsets, goffsets;
    moe_dispatch(rows, slots, offsets, idx, E);
    moe_dispatch(grows, gslots, goffsets, gidx, E);
    EXPECT_EQ(offsets, goffsets);
    EXPECT_TRUE(same_ints(rows, grows) && same_ints(slots, gslots)) << "dispatch" << tag;

    Tensor aux = Tensor::empty({N / T}, DType::f32), gaux = to_gpu(aux);
    moe_aux_loss_forward(aux, probs, idx, T);
    moe_aux_loss_forward(gaux, gprobs, gidx, T);
    expect_close(aux, gaux, kF32Tol, "aux loss" + tag);
    Tensor daux = random_cpu({N, E}, 14), gdaux = to_gpu(daux);
    moe_aux_loss_backward(daux, idx, T, 0.01f);
    moe_aux_loss_backward(gdaux, gidx, T, 0.01f);
    expect_close(daux, gdaux, kF32Tol, "aux loss backward" + tag);

    const Tensor x = random_cpu({N, C}, 15, 1.f, DType::bf16);
    Tensor gathered = Tensor::empty({N * K, C}, DType::bf16), ggathered = to_gpu(gathered);
    gather_rows(gathered, x, rows);
    gather_rows(ggathered, to_gpu(x), grows);
    EXPECT_TRUE(same_ints(gathered, ggathered)) << "gather_rows" << tag;

    const Tensor expert_out = random_cpu({N * K, C}, 16);
    Tensor combined = random_cpu({N, C}, 17), gcombined = to_gpu(combined);
    combine_rows(combined, expert_out, slots, &weights);
    combine_rows(gcombined, to_gpu(expert_out), gslots, &gweights);
    expect_close(combined, gcombined, kF32Tol, "combine_rows" + tag);
    const Tensor dcomb = random_cpu({N, C}, 18);
    Tensor dexp = random_cpu({N * K, C}, 19), dw = random_cpu({N, K}, 20);
    Tensor gdexp = to_gpu(dexp), gdw = to_gpu(dw);
    combine_rows_backward(dexp, dw, dcomb, expert_out, slots, weights);
    combine_rows_backward(gdexp, gdw, to_gpu(dcomb), to_gpu(expert_out), gslots, gweights);
    expect_close(dexp, gdexp, kF32Tol, "combine dinp" + tag);
    expect_close(dw, gdw, kF32Tol, "combine dweights" + tag);
  }
}

}  // namespace
}  // namespace zt::testing
