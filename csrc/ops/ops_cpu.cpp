// CPU kernels of the fused GAN ops: contiguous spans in `omp simd` loops, split over OpenMP threads
// only when the tensor is big enough to pay for the fork (small GAN layers stay single-threaded).
//
// Without trapping math GCC may evaluate both arms of `z > 0 ? z : alpha * z` and vectorise the
// select (we never read floating-point exception flags); without errno math, sqrt is one instruction.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <omp.h>

#include <algorithm>
#include <stdexcept>

#include "ops/ops.h"
#include "ops/ops_math.h"

namespace isogan::ops {
namespace {

// Below this many elements a call runs on the calling thread: an OpenMP fork costs microseconds.
constexpr index_t kParallelElements = index_t(1) << 16;
// Work unit of the parallel loops: long enough for the simd loop, short enough to balance threads.
constexpr index_t kSpan = 4096;

// Calls span(row, begin, length) over `rows` rows of `row_length` elements, cut into spans of at
// most kSpan so that a few long rows still spread over all threads.
template <typename Span>
void for_each_span(index_t rows, index_t row_length, bool parallel, Span&& span) {
  const index_t spans_per_row = (row_length + kSpan - 1) / kSpan;
  const index_t n_spans = rows * spans_per_row;
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t s = 0; s < n_spans; ++s) {
    const index_t row = s / spans_per_row;
    const index_t begin = (s % spans_per_row) * kSpan;
    span(row, begin, std::min(kSpan, row_length - begin));
  }
}

// One contiguous span of bias_act. VectorBias: element i adds bias[i]; otherwise every element adds
// bias_scalar. Every scalar is a by-value parameter so that nothing in the loop can alias `out`.
template <typename T, Activation A, int Order, bool HasClamp, bool VectorBias>
void bias_act_span(index_t length, const T* __restrict x, const T* __restrict bias, T bias_scalar,
                   const T* __restrict grad, T* __restrict out, T alpha, T gain, T clamp) {
#pragma omp simd
  for (index_t i = 0; i < length; ++i) {
    const T z = x[i] + (VectorBias ? bias[i] : bias_scalar);
    out[i] = bias_act_element<A, Order, HasClamp>(z, Order > 0 ? grad[i] : T(0), alpha, gain, clamp);
  }
}

template <typename T>
struct BiasActLoop {
  const BiasActParams& p;

  template <Activation A, int Order, bool HasClamp>
  void operator()() const {
    const T* x = static_cast<const T*>(p.x);
    const T* bias = static_cast<const T*>(p.bias);
    const T* grad = static_cast<const T*>(p.grad);
    T* out = static_cast<T*>(p.out);
    const T alpha = T(p.alpha), gain = T(p.gain), clamp = T(p.clamp);
    const index_t n = p.outer * p.channels * p.inner;
    const bool parallel = n >= kParallelElements;
    auto grad_at = [grad](index_t offset) { return Order > 0 ? grad + offset : nullptr; };

    if (bias == nullptr) {
      for_each_span(1, n, parallel, [&](index_t, index_t begin, index_t length) {
        bias_act_span<T, A, Order, HasClamp, false>(length, x + begin, nullptr, T(0), grad_at(begin), out + begin,
                                                    alpha, gain, clamp);
      });
    } else if (p.inner == 1) {
      // Channels are the fastest axis: each row of `channels` elements adds the bias vector.
      const index_t channels = p.channels;
      for_each_span(p.outer, channels, parallel, [&](index_t row, index_t begin, index_t length) {
        const index_t offset = row * channels + begin;
        bias_act_span<T, A, Order, HasClamp, true>(length, x + offset, bias + begin, T(0), grad_at(offset),
                                                   out + offset, alpha, gain, clamp);
      });
    } else {
      // Each row of `inner` elements shares one bias value.
      const index_t channels = p.channels, inner = p.inner;
      for_each_span(p.outer * channels, inner, parallel, [&](index_t row, index_t begin, index_t length) {
        const index_t offset = row * inner + begin;
        bias_act_span<T, A, Order, HasClamp, false>(length, x + offset, nullptr, bias[row % channels],
                                                    grad_at(offset), out + offset, alpha, gain, clamp);
      });
    }
  }
};

template <typename T>
void gan_loss_typed(const GanLossParams& p) {
  const T* logits = static_cast<const T*>(p.logits);
  const bool parallel = p.n >= kParallelElements;
  const T sign = p.real ? T(-1) : T(1);
  if (p.grad == nullptr) {
    // Accumulate in double: a float32 running sum of 1e6 terms would lose ~3 digits.
    double total = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : total) if (parallel)
    for (index_t i = 0; i < p.n; ++i) total += static_cast<double>(softplus(sign * logits[i]));
    *static_cast<T*>(p.out) = static_cast<T>(total / static_cast<double>(p.n));
    return;
  }
  const T scale = *static_cast<const T*>(p.grad) * (sign / static_cast<T>(p.n));
  T* out = static_cast<T*>(p.out);
#pragma omp parallel for simd schedule(static) if (parallel)
  for (index_t i = 0; i < p.n; ++i) out[i] = scale * sigmoid(sign * logits[i]);
}

// Mirrors torch.optim.Adam's single-tensor step operation for operation:
//   grad.add(param, alpha=wd); exp_avg.lerp_(grad, 1-b1); exp_avg_sq.mul_(b2).addcmul_(grad, grad, 1-b2);
//   param.addcdiv_(exp_avg, exp_avg_sq.sqrt() / bc2_sqrt + eps, value=-step_size)
template <typename T>
void adam_typed(const AdamParams& p) {
  const T lerp_weight = T(p.one_minus_beta1), beta2 = T(p.beta2), one_minus_beta2 = T(p.one_minus_beta2);
  const T eps = T(p.eps), weight_decay = T(p.weight_decay);
  const bool decay = p.weight_decay != 0.0;
  // torch's lerp switches formula at weight 0.5 to stay exact at both ends.
  const bool lerp_from_start = lerp_weight < T(0.5);
  index_t total = 0;
  for (index_t size : p.sizes) total += size;
#pragma omp parallel if (total >= kParallelElements)
  for (std::size_t t = 0; t < p.params.size(); ++t) {
    T* __restrict param = static_cast<T*>(p.params[t]);
    const T* __restrict grad = static_cast<const T*>(p.grads[t]);
    T* __restrict exp_avg = static_cast<T*>(p.exp_avgs[t]);
    T* __restrict exp_avg_sq = static_cast<T*>(p.exp_avg_sqs[t]);
    const T neg_step_size = -T(p.step_sizes[t]);
    const T bias_correction2_sqrt = T(p.bias_correction2_sqrts[t]);
#pragma omp for simd schedule(static) nowait
    for (index_t i = 0; i < p.sizes[t]; ++i) {
      const T g = decay ? grad[i] + weight_decay * param[i] : grad[i];
      const T m = exp_avg[i];
      const T m_new = lerp_from_start ? m + lerp_weight * (g - m) : g - (g - m) * (T(1) - lerp_weight);
      const T v_new = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g;
      exp_avg[i] = m_new;
      exp_avg_sq[i] = v_new;
      param[i] = param[i] + neg_step_size * (m_new / (std::sqrt(v_new) / bias_correction2_sqrt + eps));
    }
  }
}

[[noreturn]] void unsupported(ScalarType dtype, const char* op) {
  throw std::invalid_argument(std::string(op) + ": the CPU kernel supports float32 and float64, got dtype code " +
                              std::to_string(static_cast<int>(dtype)));
}

}  // namespace

void bias_act_cpu(const BiasActParams& p, ScalarType dtype) {
  const bool has_clamp = p.clamp >= 0.0;
  if (dtype == ScalarType::float32) {
    dispatch_bias_act(p.act, p.order, has_clamp, BiasActLoop<float>{p});
  } else if (dtype == ScalarType::float64) {
    dispatch_bias_act(p.act, p.order, has_clamp, BiasActLoop<double>{p});
  } else {
    unsupported(dtype, "bias_act");
  }
}

void gan_loss_cpu(const GanLossParams& p, ScalarType dtype) {
  if (dtype == ScalarType::float32) {
    gan_loss_typed<float>(p);
  } else if (dtype == ScalarType::float64) {
    gan_loss_typed<double>(p);
  } else {
    unsupported(dtype, "gan_loss");
  }
}

void adam_cpu(const AdamParams& p, ScalarType dtype) {
  if (dtype == ScalarType::float32) {
    adam_typed<float>(p);
  } else if (dtype == ScalarType::float64) {
    adam_typed<double>(p);
  } else {
    unsupported(dtype, "adam");
  }
}

}  // namespace isogan::ops
