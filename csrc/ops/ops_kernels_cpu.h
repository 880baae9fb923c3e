// The bias_act and gan_loss CPU kernels, compiled once per instruction set: ops_cpu.cpp includes
// this file for the baseline x86-64 / aarch64 target and ops_avx2_cpu.cpp for AVX2 + FMA, each with
// its own ISOGAN_OPS_CPU_VARIANT namespace name so the two instantiations never merge at link time.
// ops_cpu.cpp picks one at run time. Include only from those two files, after every other include.
#ifndef ISOGAN_OPS_CPU_VARIANT
#error "define ISOGAN_OPS_CPU_VARIANT (the namespace of this instruction-set variant) before including"
#endif

namespace isogan::ops::ISOGAN_OPS_CPU_VARIANT {
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

}  // namespace

// bias_act for float32 (use_double false) or float64 data.
void bias_act(const BiasActParams& p, bool use_double) {
  const bool has_clamp = p.clamp >= 0.0;
  if (use_double) {
    dispatch_bias_act(p.act, p.order, has_clamp, BiasActLoop<double>{p});
  } else {
    dispatch_bias_act(p.act, p.order, has_clamp, BiasActLoop<float>{p});
  }
}

// gan_loss for float32 (use_double false) or float64 data.
void gan_loss(const GanLossParams& p, bool use_double) {
  if (use_double) {
    gan_loss_typed<double>(p);
  } else {
    gan_loss_typed<float>(p);
  }
}

}  // namespace isogan::ops::ISOGAN_OPS_CPU_VARIANT
