// CUDA kernels of the fused GAN ops: grid-stride elementwise loops with 16-byte vector loads
// where the buffers allow, a deterministic two-pass reduction for the loss, and a multi-tensor
// Adam that updates up to kAdamTensorsPerLaunch tensors per launch. Every launch goes to the
// caller's stream on the caller's device; nothing synchronises the host.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/cuda_utils.cuh"
#include "ops/ops.h"
#include "ops/ops_math.h"

namespace isogan::ops {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 8;
constexpr int kLossPartials = 1024;  // blocks of the loss's first pass = threads of its second
constexpr int kAdamTensorsPerLaunch = 32;

int grid_size(index_t work_items, int device) {
  int sm_count = 0;
  ISOGAN_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
  const index_t wanted = (work_items + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<index_t>(1, std::min<index_t>(wanted, index_t(sm_count) * kBlocksPerSm)));
}

// Storage type -> arithmetic type: half and bfloat16 compute in float.
template <typename T>
struct ComputeOf {
  using type = T;
};
template <>
struct ComputeOf<__half> {
  using type = float;
};
template <>
struct ComputeOf<__nv_bfloat16> {
  using type = float;
};
template <typename T>
using compute_t = typename ComputeOf<T>::type;

__device__ __forceinline__ float to_compute(float v) { return v; }
__device__ __forceinline__ double to_compute(double v) { return v; }
__device__ __forceinline__ float to_compute(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_compute(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_compute(compute_t<T> v) {
  if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(v);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(v);
  } else {
    return v;
  }
}

// 16 bytes of T, loaded and stored as one transaction.
template <typename T>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};

template <typename T>
struct BiasActArgs {
  const T* x;     // x: (n,) = (outer, channels, inner) C-contiguous
  const T* bias;  // bias: (channels,) or nullptr
  const T* grad;  // grad: (n,) for Order >= 1
  T* out;         // out: (n,)
  index_t n;
  index_t channels;
  index_t inner;
  compute_t<T> alpha;
  compute_t<T> gain;
  compute_t<T> clamp;
  bool has_clamp;
  bool vectorised;    // x, grad, out 16-byte aligned
  bool narrow_index;  // grid_stride_fits_uint32(n, grid threads)
};

template <typename T, Activation A, int Order, typename Index>
__device__ __forceinline__ T bias_act_at(const BiasActArgs<T>& p, T x, T grad, Index i) {
  using C = compute_t<T>;
  C z = to_compute(x);
  if (p.bias != nullptr) {
    const Index channel = p.inner == 1 ? i % Index(p.channels) : (i / Index(p.inner)) % Index(p.channels);
    z += to_compute(p.bias[channel]);
  }
  const C g = Order > 0 ? to_compute(grad) : C(0);
  const C y = p.has_clamp ? bias_act_element<A, Order, true>(z, g, p.alpha, p.gain, p.clamp)
                          : bias_act_element<A, Order, false>(z, g, p.alpha, p.gain, p.clamp);
  return from_compute<T>(y);
}

// Index is uint32 when the loop's indices fit: the channel of an element costs an integer division.
template <typename T, Activation A, int Order, typename Index>
__device__ void bias_act_loop(const BiasActArgs<T>& p) {
  const Index n = Index(p.n);
  const Index stride = Index(gridDim.x) * blockDim.x;
  const Index start = Index(blockIdx.x) * blockDim.x + threadIdx.x;
  Index scalar_from = 0;
  if (p.vectorised) {
    constexpr int kVec = Pack<T>::kSize;
    const Index n_packs = n / kVec;
    const auto* x = reinterpret_cast<const Pack<T>*>(p.x);
    const auto* grad = reinterpret_cast<const Pack<T>*>(p.grad);
    auto* out = reinterpret_cast<Pack<T>*>(p.out);
    for (Index pack = start; pack < n_packs; pack += stride) {
      const Pack<T> xs = x[pack];
      Pack<T> gs;
      if constexpr (Order > 0) gs = grad[pack];
      Pack<T> ys;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        ys.v[k] = bias_act_at<T, A, Order>(p, xs.v[k], Order > 0 ? gs.v[k] : xs.v[k], pack * kVec + k);
      }
      out[pack] = ys;
    }
    scalar_from = n_packs * kVec;
  }
  for (Index i = scalar_from + start; i < n; i += stride) {
    p.out[i] = bias_act_at<T, A, Order>(p, p.x[i], Order > 0 ? p.grad[i] : p.x[i], i);
  }
}

template <typename T, Activation A, int Order>
__global__ void __launch_bounds__(kThreads) bias_act_kernel(BiasActArgs<T> p) {
  if (p.narrow_index) {
    bias_act_loop<T, A, Order, std::uint32_t>(p);
  } else {
    bias_act_loop<T, A, Order, index_t>(p);
  }
}

template <typename T>
struct BiasActLaunch {
  const BiasActArgs<T>& args;
  int grid;
  cudaStream_t stream;

  // The kernel reads args.has_clamp itself (a uniform branch), so both HasClamp values launch the
  // same kernel and half as many kernels are compiled.
  template <Activation A, int Order, bool HasClamp>
  void operator()() const {
    bias_act_kernel<T, A, Order><<<grid, kThreads, 0, stream>>>(args);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
  }
};

bool aligned16(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

template <typename T>
void bias_act_typed(const BiasActParams& p, int device, cudaStream_t stream) {
  using C = compute_t<T>;
  BiasActArgs<T> args;
  args.x = static_cast<const T*>(p.x);
  args.bias = static_cast<const T*>(p.bias);
  args.grad = static_cast<const T*>(p.grad);
  args.out = static_cast<T*>(p.out);
  args.n = p.outer * p.channels * p.inner;
  args.channels = p.channels;
  args.inner = p.inner;
  args.alpha = C(p.alpha);
  args.gain = C(p.gain);
  args.clamp = C(p.clamp);
  args.has_clamp = p.clamp >= 0.0;
  args.vectorised = aligned16(p.x) && aligned16(p.out) && (p.order == 0 || aligned16(p.grad));
  if (args.n == 0) return;
  const index_t work = args.vectorised ? (args.n + Pack<T>::kSize - 1) / Pack<T>::kSize : args.n;
  const int grid = grid_size(work, device);
  args.narrow_index = grid_stride_fits_uint32(args.n, index_t(grid) * kThreads);
  dispatch_bias_act(p.act, p.order, args.has_clamp, BiasActLaunch<T>{args, grid, stream});
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    gan_loss_partials_kernel(const T* __restrict__ logits, index_t n, compute_t<T> sign, double* __restrict__ partials) {
  // logits: (n,); partials: (gridDim.x,) one sum per block, written unconditionally
  __shared__ double block_sums[kThreads];
  double sum = 0.0;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x) {
    sum += static_cast<double>(softplus(sign * to_compute(logits[i])));
  }
  block_sums[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) block_sums[threadIdx.x] += block_sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = block_sums[0];
}

template <typename T>
__global__ void __launch_bounds__(kLossPartials)
    gan_loss_finish_kernel(const double* __restrict__ partials, index_t n, T* __restrict__ out) {
  // partials: (kLossPartials,); out: () the mean. A fixed-order tree sum: deterministic.
  __shared__ double sums[kLossPartials];
  sums[threadIdx.x] = partials[threadIdx.x];
  __syncthreads();
  for (int half = kLossPartials / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = from_compute<T>(static_cast<compute_t<T>>(sums[0] / static_cast<double>(n)));
}

template <typename T>
__global__ void __launch_bounds__(kThreads) gan_loss_grad_kernel(const T* __restrict__ logits, const T* __restrict__ grad,
                                                                 index_t n, compute_t<T> sign, T* __restrict__ out) {
  // logits, out: (n,); grad: () upstream gradient of the mean loss
  using C = compute_t<T>;
  const C scale = to_compute(*grad) * (sign / static_cast<C>(n));
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x) {
    out[i] = from_compute<T>(scale * sigmoid(sign * to_compute(logits[i])));
  }
}

template <typename T>
void gan_loss_typed(const GanLossParams& p, double* partials, int device, cudaStream_t stream) {
  const compute_t<T> sign = p.real ? compute_t<T>(-1) : compute_t<T>(1);
  const T* logits = static_cast<const T*>(p.logits);
  T* out = static_cast<T*>(p.out);
  if (p.grad == nullptr) {
    gan_loss_partials_kernel<T><<<kLossPartials, kThreads, 0, stream>>>(logits, p.n, sign, partials);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
    gan_loss_finish_kernel<T><<<1, kLossPartials, 0, stream>>>(partials, p.n, out);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
  } else {
    gan_loss_grad_kernel<T><<<grid_size(p.n, device), kThreads, 0, stream>>>(logits, static_cast<const T*>(p.grad),
                                                                              p.n, sign, out);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
  }
}

// Up to kAdamTensorsPerLaunch tensors, passed by value as the kernel argument (no host->device copy).
template <typename T>
struct AdamBatch {
  T* params[kAdamTensorsPerLaunch];             // params[t]: (sizes[t],)
  const T* grads[kAdamTensorsPerLaunch];        // grads[t]: (sizes[t],)
  T* exp_avgs[kAdamTensorsPerLaunch];           // exp_avgs[t]: (sizes[t],)
  T* exp_avg_sqs[kAdamTensorsPerLaunch];        // exp_avg_sqs[t]: (sizes[t],)
  index_t sizes[kAdamTensorsPerLaunch];
  T neg_step_sizes[kAdamTensorsPerLaunch];
  T bias_correction2_sqrts[kAdamTensorsPerLaunch];
  int count;
};

template <typename T>
struct AdamHyper {
  T lerp_weight;
  T beta2;
  T one_minus_beta2;
  T eps;
  T weight_decay;
  bool decay;
};

// The arithmetic of ops_cpu.cpp's adam_typed (torch.optim.Adam's single-tensor step).
template <typename T>
__global__ void __launch_bounds__(kThreads) adam_kernel(AdamBatch<T> batch, AdamHyper<T> h) {
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  const bool lerp_from_start = h.lerp_weight < T(0.5);
  for (int t = 0; t < batch.count; ++t) {
    T* __restrict__ param = batch.params[t];
    const T* __restrict__ grad = batch.grads[t];
    T* __restrict__ exp_avg = batch.exp_avgs[t];
    T* __restrict__ exp_avg_sq = batch.exp_avg_sqs[t];
    const T neg_step_size = batch.neg_step_sizes[t];
    const T bias_correction2_sqrt = batch.bias_correction2_sqrts[t];
    for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < batch.sizes[t]; i += stride) {
      const T p = param[i];
      const T g = h.decay ? grad[i] + h.weight_decay * p : grad[i];
      const T m = exp_avg[i];
      const T m_new = lerp_from_start ? m + h.lerp_weight * (g - m) : g - (g - m) * (T(1) - h.lerp_weight);
      const T v_new = exp_avg_sq[i] * h.beta2 + h.one_minus_beta2 * g * g;
      exp_avg[i] = m_new;
      exp_avg_sq[i] = v_new;
      param[i] = p + neg_step_size * (m_new / (sqrt(v_new) / bias_correction2_sqrt + h.eps));
    }
  }
}

template <typename T>
void adam_typed(const AdamParams& p, int device, cudaStream_t stream) {
  const AdamHyper<T> hyper{T(p.one_minus_beta1), T(p.beta2),        T(p.one_minus_beta2),
                           T(p.eps),             T(p.weight_decay), p.weight_decay != 0.0};
  const std::size_t count = p.params.size();
  for (std::size_t first = 0; first < count; first += kAdamTensorsPerLaunch) {
    AdamBatch<T> batch{};
    index_t largest = 0;
    batch.count = static_cast<int>(std::min<std::size_t>(kAdamTensorsPerLaunch, count - first));
    for (int k = 0; k < batch.count; ++k) {
      const std::size_t t = first + k;
      batch.params[k] = static_cast<T*>(p.params[t]);
      batch.grads[k] = static_cast<const T*>(p.grads[t]);
      batch.exp_avgs[k] = static_cast<T*>(p.exp_avgs[t]);
      batch.exp_avg_sqs[k] = static_cast<T*>(p.exp_avg_sqs[t]);
      batch.sizes[k] = p.sizes[t];
      batch.neg_step_sizes[k] = -T(p.step_sizes[t]);
      batch.bias_correction2_sqrts[k] = T(p.bias_correction2_sqrts[t]);
      largest = std::max(largest, p.sizes[t]);
    }
    if (largest == 0) continue;
    adam_kernel<T><<<grid_size(largest, device), kThreads, 0, stream>>>(batch, hyper);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
  }
}

cudaStream_t as_stream(std::uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

[[noreturn]] void unsupported(ScalarType dtype, const char* op) {
  throw std::invalid_argument(std::string(op) + ": unsupported dtype code " + std::to_string(static_cast<int>(dtype)) +
                              " for CUDA");
}

}  // namespace

void bias_act_cuda(const BiasActParams& p, ScalarType dtype, int device, std::uintptr_t stream) {
  DeviceGuard guard(device);
  switch (dtype) {
    case ScalarType::float32: bias_act_typed<float>(p, device, as_stream(stream)); break;
    case ScalarType::float64: bias_act_typed<double>(p, device, as_stream(stream)); break;
    case ScalarType::float16: bias_act_typed<__half>(p, device, as_stream(stream)); break;
    case ScalarType::bfloat16: bias_act_typed<__nv_bfloat16>(p, device, as_stream(stream)); break;
    default: unsupported(dtype, "bias_act");
  }
}

int gan_loss_cuda_partials() { return kLossPartials; }

void gan_loss_cuda(const GanLossParams& p, ScalarType dtype, double* partials, int device, std::uintptr_t stream) {
  DeviceGuard guard(device);
  switch (dtype) {
    case ScalarType::float32: gan_loss_typed<float>(p, partials, device, as_stream(stream)); break;
    case ScalarType::float64: gan_loss_typed<double>(p, partials, device, as_stream(stream)); break;
    case ScalarType::float16: gan_loss_typed<__half>(p, partials, device, as_stream(stream)); break;
    case ScalarType::bfloat16: gan_loss_typed<__nv_bfloat16>(p, partials, device, as_stream(stream)); break;
    default: unsupported(dtype, "gan_loss");
  }
}

void adam_cuda(const AdamParams& p, ScalarType dtype, int device, std::uintptr_t stream) {
  DeviceGuard guard(device);
  switch (dtype) {
    case ScalarType::float32: adam_typed<float>(p, device, as_stream(stream)); break;
    case ScalarType::float64: adam_typed<double>(p, device, as_stream(stream)); break;
    default: unsupported(dtype, "adam");
  }
}

}  // namespace isogan::ops
