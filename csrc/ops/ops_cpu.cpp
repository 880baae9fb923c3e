// CPU kernels of the fused GAN ops: contiguous spans in `omp simd` loops, split over OpenMP threads
// only when the tensor is big enough to pay for the fork (small GAN layers stay single-threaded).
// bias_act and gan_loss live in ops_kernels_cpu.h, compiled here for the baseline instruction set
// and in ops_avx2_cpu.cpp / ops_avx512_cpu.cpp for wider vectors (see ops_isa.h); the entry points
// below choose by the running CPU.
//
// Without trapping math GCC may evaluate both arms of `z > 0 ? z : alpha * z` and vectorise the
// select (we never read floating-point exception flags); without errno math, sqrt is one instruction.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "ops/ops.h"
#include "ops/ops_isa.h"
#include "ops/ops_math.h"

#define ISOGAN_OPS_CPU_VARIANT baseline
#include "ops/ops_kernels_cpu.h"
#undef ISOGAN_OPS_CPU_VARIANT

namespace isogan::ops {
namespace {

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
#pragma omp parallel if (total >= baseline::kParallelElements)
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

CpuVariant best_cpu_variant() {
#ifdef ISOGAN_OPS_X86_VARIANTS
  static const CpuVariant best = [] {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")) {
      return CpuVariant::avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuVariant::avx2;
    return CpuVariant::baseline;
  }();
  return best;
#else
  return CpuVariant::baseline;
#endif
}

namespace {
// -1: not narrowed, use best_cpu_variant().
std::atomic<int> chosen_variant{-1};
}  // namespace

CpuVariant active_cpu_variant() {
  const int chosen = chosen_variant.load(std::memory_order_relaxed);
  return chosen < 0 ? best_cpu_variant() : static_cast<CpuVariant>(chosen);
}

void set_cpu_variant(CpuVariant variant) {
  if (static_cast<int>(variant) > static_cast<int>(best_cpu_variant())) {
    throw std::invalid_argument("this CPU cannot run the requested instruction-set variant");
  }
  chosen_variant.store(static_cast<int>(variant), std::memory_order_relaxed);
}

void bias_act_cpu(const BiasActParams& p, ScalarType dtype) {
  if (dtype != ScalarType::float32 && dtype != ScalarType::float64) unsupported(dtype, "bias_act");
  const bool use_double = dtype == ScalarType::float64;
  switch (active_cpu_variant()) {
#ifdef ISOGAN_OPS_X86_VARIANTS
    case CpuVariant::avx512: avx512::bias_act(p, use_double); return;
    case CpuVariant::avx2: avx2::bias_act(p, use_double); return;
#endif
    default: baseline::bias_act(p, use_double); return;
  }
}

void gan_loss_cpu(const GanLossParams& p, ScalarType dtype) {
  if (dtype != ScalarType::float32 && dtype != ScalarType::float64) unsupported(dtype, "gan_loss");
  const bool use_double = dtype == ScalarType::float64;
  switch (active_cpu_variant()) {
#ifdef ISOGAN_OPS_X86_VARIANTS
    case CpuVariant::avx512: avx512::gan_loss(p, use_double); return;
    case CpuVariant::avx2: avx2::gan_loss(p, use_double); return;
#endif
    default: baseline::gan_loss(p, use_double); return;
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
