// The tensor-core attention kernels (attention_mma.cu) behind attention_forward/backward:
// bf16 q/k/v with head dim 64 or 128. Each returns false, launching nothing, for inputs it
// does not take (then the plain kernels of attention.cu run).
#pragma once
#include "core/cuda/ops.h"

namespace zt::cuda {

// ZT_CUDA_ATTENTION: tensor_cores (the default, also when unset) or plain (the plain kernels
// for every input); any other value is an error naming the variable (attention_choice.cpp).
bool tensor_core_attention_chosen();

bool attention_forward_mma(void* out, Elem out_type, float* lse, const void* qkv, Elem qkv_type, const AttnDims& d);
// scratch: B*H*T floats (delta = rowsum(dout * out)).
bool attention_backward_mma(float* dqkv, const float* dout, const void* qkv, Elem qkv_type, const void* out,
                            Elem out_type, const float* lse, const AttnDims& d, float* scratch);

}  // namespace zt::cuda
