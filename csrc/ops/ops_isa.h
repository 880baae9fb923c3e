// Instruction-set variants of the bias_act and gan_loss CPU kernels and the run-time choice among
// them. ops_kernels_cpu.h is compiled once per variant: `baseline` (ops_cpu.cpp: SSE2 on x86-64,
// the default target elsewhere), `avx2` (ops_avx2_cpu.cpp: AVX2 + FMA, 8 float lanes) and `avx512`
// (ops_avx512_cpu.cpp: AVX-512, 16 float lanes). The wider ones exist only on x86-64 with GCC/Clang.
#pragma once

#include "ops/ops.h"

namespace isogan::ops {

enum class CpuVariant : int { baseline = 0, avx2 = 1, avx512 = 2 };

#if defined(__x86_64__) && defined(__GNUC__)
#define ISOGAN_OPS_X86_VARIANTS 1
// Same contracts as baseline::bias_act / baseline::gan_loss in ops_kernels_cpu.h.
namespace avx2 {
void bias_act(const BiasActParams& p, bool use_double);
void gan_loss(const GanLossParams& p, bool use_double);
}  // namespace avx2
namespace avx512 {
void bias_act(const BiasActParams& p, bool use_double);
void gan_loss(const GanLossParams& p, bool use_double);
}  // namespace avx512
#endif

// The widest variant the running CPU executes (checked once per process).
CpuVariant best_cpu_variant();

// The variant the kernels use now: best_cpu_variant() unless narrowed by set_cpu_variant.
CpuVariant active_cpu_variant();

// Use `variant` from now on (tests compare the variants); throws std::invalid_argument if the
// running CPU cannot execute it.
void set_cpu_variant(CpuVariant variant);

}  // namespace isogan::ops
