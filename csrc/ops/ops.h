// Fused GAN training ops: bias + activation (+ derivatives), logistic GAN loss, multi-tensor Adam.
// The kernels know nothing about torch: they take raw addresses of C-contiguous buffers, sizes, an
// element type (ScalarType) and, on CUDA, the device and the caller's stream. isogan/ops/*.py wraps
// them as torch custom ops.
#pragma once

#include <cstdint>
#include <vector>

#include "common/common.h"

namespace isogan::ops {

// Element type of every buffer of one call; the binding reads it from a torch.dtype (ops/ops_py.cpp,
// kTorchDtypeNames in this order).
enum class ScalarType : int { float32 = 0, float64 = 1, float16 = 2, bfloat16 = 3 };

// Codes match ACTIVATIONS in isogan/ops/_bias_act.py.
enum class Activation : int { linear = 0, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish };
constexpr int kActivationCount = 9;

// out = order 0: clamp(gain * act(x + bias), -clamp, clamp)
//       order 1, 2: grad * gain * act^(order)(x + bias), zero where |gain * act(x + bias)| > clamp
// x viewed as (outer, channels, inner): the bias runs along the middle axis.
struct BiasActParams {
  const void* x = nullptr;     // x: (outer, channels, inner) C-contiguous
  const void* bias = nullptr;  // bias: (channels,), or nullptr for no bias
  const void* grad = nullptr;  // grad: (outer, channels, inner) upstream gradient; order >= 1 only
  void* out = nullptr;         // out: (outer, channels, inner), must not alias the inputs
  index_t outer = 0;
  index_t channels = 0;
  index_t inner = 0;
  Activation act = Activation::linear;
  double alpha = 0.0;   // lrelu slope / elu scale
  double gain = 1.0;
  double clamp = -1.0;  // < 0: no clamping
  int order = 0;        // 0, 1 or 2
};

// out = forward (grad == nullptr): mean_i softplus(s * logits_i), s = -1 for real, +1 for fake
//       backward: grad * s * sigmoid(s * logits_i) / n
struct GanLossParams {
  const void* logits = nullptr;  // logits: (n,) C-contiguous
  const void* grad = nullptr;    // grad: () upstream gradient of the loss; nullptr for the forward
  void* out = nullptr;           // out: () loss (forward) or (n,) gradient (backward)
  index_t n = 0;
  bool real = true;
};

// One Adam step (torch.optim.Adam arithmetic, L2 weight decay) over many tensors at once.
struct AdamParams {
  std::vector<void*> params;             // params[t]: (sizes[t],) updated in place
  std::vector<const void*> grads;        // grads[t]: (sizes[t],)
  std::vector<void*> exp_avgs;           // exp_avgs[t]: (sizes[t],) first moment, in place
  std::vector<void*> exp_avg_sqs;        // exp_avg_sqs[t]: (sizes[t],) second moment, in place
  std::vector<index_t> sizes;            // elements of tensor t
  std::vector<double> step_sizes;        // lr / (1 - beta1^step_t)
  std::vector<double> bias_correction2_sqrts;  // sqrt(1 - beta2^step_t)
  double one_minus_beta1 = 0.1;
  double beta2 = 0.999;
  double one_minus_beta2 = 0.001;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// Whether a grid-stride loop over n elements run by `total_threads` threads may count in uint32
// (a cheaper channel division per element): its index reaches n - 1 + total_threads, which must
// not wrap, or the loop would start over at a small index and never end.
constexpr bool grid_stride_fits_uint32(index_t n, index_t total_threads) {
  return n + total_threads <= (index_t{1} << 32);
}

// CPU: float32 and float64.
void bias_act_cpu(const BiasActParams& p, ScalarType dtype);
void gan_loss_cpu(const GanLossParams& p, ScalarType dtype);
void adam_cpu(const AdamParams& p, ScalarType dtype);

#ifdef ISOGAN_WITH_CUDA
// CUDA: bias_act and gan_loss in all four dtypes, Adam in float32/float64. Asynchronous on `stream`.
void bias_act_cuda(const BiasActParams& p, ScalarType dtype, int device, std::uintptr_t stream);
// Number of double partial sums the forward gan_loss needs as scratch (`partials`).
int gan_loss_cuda_partials();
void gan_loss_cuda(const GanLossParams& p, ScalarType dtype, double* partials, int device, std::uintptr_t stream);
void adam_cuda(const AdamParams& p, ScalarType dtype, int device, std::uintptr_t stream);
#endif

}  // namespace isogan::ops
