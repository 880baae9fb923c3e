// The bias_act and gan_loss CPU kernels compiled for AVX2 + FMA (8 float lanes instead of SSE2's 4);
// ops_cpu.cpp calls them when the running CPU supports both. Every header is included before the
// target pragma, so only this file's own kernels (and what they inline) use the wider instructions:
// no out-of-line function shared with other files is ever compiled for AVX2.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include "ops/ops_isa.h"

#ifdef ISOGAN_OPS_X86_VARIANTS

#include <omp.h>

#include <algorithm>
#include <stdexcept>

#include "ops/ops.h"
#include "ops/ops_math.h"

#pragma GCC target("avx2,fma")

#define ISOGAN_OPS_CPU_VARIANT avx2
#include "ops/ops_kernels_cpu.h"
#undef ISOGAN_OPS_CPU_VARIANT

#endif
