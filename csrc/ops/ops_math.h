// Elementwise math of the fused ops, shared by the CPU and CUDA kernels (host and device).
// Everything is computed in the compute type C (float for float32/float16/bfloat16, double for
// float64) and is stable for any finite input: exp overflows only to +inf, and every product
// with an overflowed term has a zero partner that wins (sigmoid(-1e4) = 1 / inf = 0).
#pragma once

#include <cmath>
#include <type_traits>

#include "ops/ops.h"
#include "ops/vector_math_cpu.h"

#if defined(__CUDACC__)
#define ISOGAN_HD __host__ __device__ __forceinline__
#else
// Always inlined on the host: the kernels of ops_kernels_cpu.h are built for several instruction
// sets, and each must get its own inlined copy rather than call one shared out-of-line body.
#define ISOGAN_HD inline __attribute__((always_inline))
#endif

namespace isogan::ops {

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// Float and double overloads that resolve the same way on host and device (never promoting float).
// On the host, float uses the branch-free versions of vector_math_cpu.h so the CPU `omp simd`
// loops vectorise; the device uses CUDA's own expf/tanhf/..., double uses libm on both.
#if defined(__CUDA_ARCH__)
#define ISOGAN_FLOAT_MATH(device_call, host_call) return device_call
#else
#define ISOGAN_FLOAT_MATH(device_call, host_call) return host_call
#endif
ISOGAN_HD float math_exp(float x) { ISOGAN_FLOAT_MATH(expf(x), vector_math::exp(x)); }
ISOGAN_HD double math_exp(double x) { return exp(x); }
ISOGAN_HD float math_expm1(float x) { ISOGAN_FLOAT_MATH(expm1f(x), vector_math::expm1(x)); }
ISOGAN_HD double math_expm1(double x) { return expm1(x); }
ISOGAN_HD float math_log1p(float x) { ISOGAN_FLOAT_MATH(log1pf(x), vector_math::log1p(x)); }
ISOGAN_HD double math_log1p(double x) { return log1p(x); }
ISOGAN_HD float math_tanh(float x) { ISOGAN_FLOAT_MATH(tanhf(x), vector_math::tanh(x)); }
ISOGAN_HD double math_tanh(double x) { return tanh(x); }
#undef ISOGAN_FLOAT_MATH

template <typename C>
ISOGAN_HD C sigmoid(C z) {
  return C(1) / (C(1) + math_exp(-z));
}

// softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
template <typename C>
ISOGAN_HD C softplus(C z) {
  return (z > C(0) ? z : C(0)) + math_log1p(math_exp(z > C(0) ? -z : z));
}

template <Activation A, typename C>
ISOGAN_HD C activation(C z, C alpha) {
  if constexpr (A == Activation::linear) return z;
  if constexpr (A == Activation::relu) return z > C(0) ? z : C(0);
  if constexpr (A == Activation::lrelu) return z > C(0) ? z : z * alpha;
  if constexpr (A == Activation::tanh) return math_tanh(z);
  if constexpr (A == Activation::sigmoid) return sigmoid(z);
  if constexpr (A == Activation::elu) return z > C(0) ? z : alpha * math_expm1(z);
  if constexpr (A == Activation::selu) return C(kSeluScale) * (z > C(0) ? z : C(kSeluAlpha) * math_expm1(z));
  if constexpr (A == Activation::softplus) return softplus(z);
  if constexpr (A == Activation::swish) return z * sigmoid(z);
}

// Order-th derivative (1 or 2); at kinks (z == 0) the left branch, as PyTorch's backward formulas.
template <Activation A, int Order, typename C>
ISOGAN_HD C activation_derivative(C z, C alpha) {
  static_assert(Order == 1 || Order == 2, "first or second derivative");
  const bool positive = z > C(0);
  if constexpr (A == Activation::linear) return Order == 1 ? C(1) : C(0);
  if constexpr (A == Activation::relu) return Order == 1 && positive ? C(1) : C(0);
  if constexpr (A == Activation::lrelu) return Order == 1 ? (positive ? C(1) : alpha) : C(0);
  if constexpr (A == Activation::tanh) {
    const C t = math_tanh(z);
    const C slope = C(1) - t * t;
    return Order == 1 ? slope : C(-2) * t * slope;
  }
  if constexpr (A == Activation::elu || A == Activation::selu) {
    const C scale = A == Activation::elu ? C(1) : C(kSeluScale);
    const C negative_scale = A == Activation::elu ? alpha : C(kSeluScale * kSeluAlpha);
    const C negative = negative_scale * math_exp(positive ? C(0) : z);
    if (positive) return Order == 1 ? scale : C(0);
    return negative;
  }
  if constexpr (A == Activation::sigmoid || A == Activation::softplus || A == Activation::swish) {
    const C s = sigmoid(z);
    const C s1 = s * (C(1) - s);         // sigmoid'
    const C s2 = s1 * (C(1) - C(2) * s);  // sigmoid''
    if constexpr (A == Activation::sigmoid) return Order == 1 ? s1 : s2;
    if constexpr (A == Activation::softplus) return Order == 1 ? s : s1;
    if constexpr (A == Activation::swish) return Order == 1 ? s + z * s1 : C(2) * s1 + z * s2;
  }
}

// One element of bias_act: Order 0 gives the clamped value, Order 1/2 the derivative times grad.
// HasClamp false: `clamp` is ignored (no clamping, every gradient passes).
template <Activation A, int Order, bool HasClamp, typename C>
ISOGAN_HD C bias_act_element(C z, C grad, C alpha, C gain, C clamp) {
  if constexpr (Order == 0) {
    const C y = activation<A>(z, alpha) * gain;
    if constexpr (HasClamp) return y > clamp ? clamp : (y < -clamp ? -clamp : y);
    return y;
  } else {
    const C d = grad * gain * activation_derivative<A, Order>(z, alpha);
    if constexpr (HasClamp) {
      // torch.clamp passes the gradient where -clamp <= y <= clamp (inclusive).
      const C y = activation<A>(z, alpha) * gain;
      return (y >= -clamp && y <= clamp) ? d : C(0);
    }
    return d;
  }
}

// Calls body.template operator()<A, Order, HasClamp>() with the runtime choices as template
// arguments, so each combination compiles to its own branch-free loop.
template <typename Body>
void dispatch_bias_act(Activation act, int order, bool has_clamp, Body&& body) {
  auto with_order = [&](auto act_tag) {
    constexpr Activation A = decltype(act_tag)::value;
    auto with_clamp = [&](auto order_tag) {
      constexpr int Order = decltype(order_tag)::value;
      if (has_clamp) {
        body.template operator()<A, Order, true>();
      } else {
        body.template operator()<A, Order, false>();
      }
    };
    switch (order) {
      case 0: with_clamp(std::integral_constant<int, 0>{}); break;
      case 1: with_clamp(std::integral_constant<int, 1>{}); break;
      default: with_clamp(std::integral_constant<int, 2>{}); break;
    }
  };
  switch (act) {
    case Activation::linear: with_order(std::integral_constant<Activation, Activation::linear>{}); break;
    case Activation::relu: with_order(std::integral_constant<Activation, Activation::relu>{}); break;
    case Activation::lrelu: with_order(std::integral_constant<Activation, Activation::lrelu>{}); break;
    case Activation::tanh: with_order(std::integral_constant<Activation, Activation::tanh>{}); break;
    case Activation::sigmoid: with_order(std::integral_constant<Activation, Activation::sigmoid>{}); break;
    case Activation::elu: with_order(std::integral_constant<Activation, Activation::elu>{}); break;
    case Activation::selu: with_order(std::integral_constant<Activation, Activation::selu>{}); break;
    case Activation::softplus: with_order(std::integral_constant<Activation, Activation::softplus>{}); break;
    case Activation::swish: with_order(std::integral_constant<Activation, Activation::swish>{}); break;
  }
}

}  // namespace isogan::ops
