// Branch-free float32 exp, expm1, log1p and tanh for the CPU kernels of the fused ops.
//
// libm's expf/tanhf/log1pf are scalar calls that stop GCC from vectorising an `omp simd` loop; these
// are straight-line arithmetic and selects, so a loop over them compiles to SSE/AVX lanes. Accuracy:
// within 3 ulp of the correctly rounded result over all finite float32 inputs (tested against
// float64 torch in tests/native/test_ops.py), with IEEE behaviour at the edges: exp overflows to
// +inf and underflows to 0, NaN propagates, tanh(+-inf) = +-1, log1p(-1) = -inf.
//
// Method: exp by Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-7 Taylor polynomial
// for e^r (truncation < 1e-8 relative) and 2^n applied in two halves so every partial scale is a
// normal float; expm1 by its Taylor series below |x| = 1/2 (no cancellation), e^x - 1 above;
// log1p through v = 1 + u = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(f / (2 + f)) as an
// odd series, plus the rounding of 1 + u corrected to first order; tanh z = t / (t + 2) with
// t = expm1(2z).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace isogan::ops::vector_math {

// Inlined into each caller, so a caller built for AVX2 (ops_avx2_cpu.cpp) gets AVX2 code.
#define ISOGAN_VECTOR_MATH inline __attribute__((always_inline))

ISOGAN_VECTOR_MATH float bits_to_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

ISOGAN_VECTOR_MATH std::uint32_t float_to_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

// 2^n for n in [-126, 127], built in the exponent field.
ISOGAN_VECTOR_MATH float exp2_int(std::int32_t n) { return bits_to_float(static_cast<std::uint32_t>(n + 127) << 23); }

ISOGAN_VECTOR_MATH float exp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;       // ln 2 rounded to 9 bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;    // ln 2 - kLn2Hi
  constexpr float kRoundMagic = 12582912.0f;   // 1.5 * 2^23: adding it rounds to an integer
  // Beyond these e^x is inf or 0 in float; clamping keeps n inside the two-half scaling range.
  // NaN passes the clamps (std::max/min return their first argument when unordered) and the
  // arithmetic below, so exp(NaN) is NaN; n is read from the bits, never by a float->int conversion.
  const float clamped = std::min(std::max(x, -104.0f), 89.0f);
  const float shifted = clamped * kLog2e + kRoundMagic;
  const float n = shifted - kRoundMagic;
  const std::int32_t n_int = static_cast<std::int32_t>(float_to_bits(shifted) - float_to_bits(kRoundMagic));
  const float r = (clamped - n * kLn2Hi) - n * kLn2Lo;
  float poly = 1.0f / 5040.0f;
  poly = poly * r + 1.0f / 720.0f;
  poly = poly * r + 1.0f / 120.0f;
  poly = poly * r + 1.0f / 24.0f;
  poly = poly * r + 1.0f / 6.0f;
  poly = poly * r + 0.5f;
  poly = poly * r + 1.0f;
  poly = poly * r + 1.0f;
  const std::int32_t half = n_int / 2;
  return poly * exp2_int(half) * exp2_int(n_int - half);
}

ISOGAN_VECTOR_MATH float expm1(float x) {
  // Taylor series to x^9 / 9!: below |x| = 1/2 the first omitted term is < 3e-10 relative.
  float poly = 1.0f / 362880.0f;
  poly = poly * x + 1.0f / 40320.0f;
  poly = poly * x + 1.0f / 5040.0f;
  poly = poly * x + 1.0f / 720.0f;
  poly = poly * x + 1.0f / 120.0f;
  poly = poly * x + 1.0f / 24.0f;
  poly = poly * x + 1.0f / 6.0f;
  poly = poly * x + 0.5f;
  const float series = x + x * (x * poly);
  const float shifted = exp(x) - 1.0f;
  const bool small = std::fabs(x) < 0.5f;
  return small ? series : shifted;
}

ISOGAN_VECTOR_MATH float log1p(float u) {
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr std::uint32_t kSqrtHalfBits = 0x3f3504f3;  // sqrt(1/2)
  const float v = 1.0f + u;
  // v = m 2^e with m in [sqrt(1/2), sqrt(2)): split the bits of v relative to those of sqrt(1/2).
  const std::uint32_t shifted = float_to_bits(v) - kSqrtHalfBits;
  const std::int32_t exponent = static_cast<std::int32_t>(shifted) >> 23;  // floor division by 2^23
  const float m = bits_to_float((shifted & 0x7fffffu) + kSqrtHalfBits);
  const float f = m - 1.0f;
  const float s = f / (2.0f + f);
  const float s2 = s * s;
  float poly = 2.0f / 9.0f;
  poly = poly * s2 + 2.0f / 7.0f;
  poly = poly * s2 + 2.0f / 5.0f;
  poly = poly * s2 + 2.0f / 3.0f;
  const float log_m = 2.0f * s + s * (s2 * poly);
  // 1 + u was rounded to v; log(1 + u) = log v + (1 + u - v) / v to first order.
  const float correction = (u - (v - 1.0f)) / v;
  const float e = static_cast<float>(exponent);
  const float value = e * kLn2Hi + ((e * kLn2Lo + correction) + log_m);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  // Outside (-1, inf): log1p(-1) = -inf, below -1 NaN, and +inf or NaN map to themselves.
  const float edge = u == -1.0f ? -kInf : (u < -1.0f ? std::numeric_limits<float>::quiet_NaN() : u);
  const bool regular = u > -1.0f && u < kInf;
  return regular ? value : edge;
}

ISOGAN_VECTOR_MATH float tanh(float z) {
  // |z| > 10: tanh rounds to +-1 in float; clamping keeps expm1(2z) finite (inf / inf would be NaN).
  const float clamped = std::min(std::max(z, -10.0f), 10.0f);
  const float t = expm1(2.0f * clamped);
  return t / (t + 2.0f);
}

#undef ISOGAN_VECTOR_MATH

}  // namespace isogan::ops::vector_math
