// CUDA landmark Isomap kernels: the twins of landmark_cpu.cpp, same contracts, device pointers.
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "common/cuda_utils.cuh"
#include "landmark/landmark.h"

namespace isogan {

namespace {

constexpr int kThreads = 256;
// Marks a picked landmark in min_sq_distance (real values are >= 0).
constexpr double kPicked = -1.0;

__global__ void fill_infinity_kernel(double* values, index_t count) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) values[i] = INFINITY;
}

__global__ void seed_kernel(index_t* landmark_index, double* min_sq_distance, index_t first_landmark) {
  landmark_index[0] = first_landmark;
  min_sq_distance[first_landmark] = kPicked;
}

// Keeps the larger value, and on ties the smaller index (the CPU kernel's order).
__device__ inline void keep_best(double& value, index_t& index, double other_value, index_t other_index) {
  if (other_value > value || (other_value == value && other_index < index)) {
    value = other_value;
    index = other_index;
  }
}

// One MaxMin round: lower every point's distance by the newest landmark, reduce a per-block argmax.
// block_value / block_index: (gridDim.x,)
template <typename T>
__global__ void maxmin_update_kernel(LandmarkMaxMinParams<T> params, index_t newest, double* block_value, index_t* block_index) {
  __shared__ double shared_value[kThreads];
  __shared__ index_t shared_index[kThreads];
  const index_t center = params.landmark_index[newest];
  double best_value = -2.0;
  index_t best_index = params.n_points;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < params.n_points;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    double current = params.min_sq_distance[i];
    if (current == kPicked) continue;
    double sq = 0.0;
    for (index_t f = 0; f < params.n_features; ++f) {
      const double diff = static_cast<double>(params.points[i * params.n_features + f]) -
                          static_cast<double>(params.points[center * params.n_features + f]);
      // Unfused, like the CPU kernel (built without FMA), so both pick the same landmarks.
      sq = __dadd_rn(sq, __dmul_rn(diff, diff));
    }
    if (sq < current) {
      current = sq;
      params.min_sq_distance[i] = sq;
    }
    keep_best(best_value, best_index, current, i);
  }
  shared_value[threadIdx.x] = best_value;
  shared_index[threadIdx.x] = best_index;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      keep_best(shared_value[threadIdx.x], shared_index[threadIdx.x], shared_value[threadIdx.x + stride],
                shared_index[threadIdx.x + stride]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    block_value[blockIdx.x] = shared_value[0];
    block_index[blockIdx.x] = shared_index[0];
  }
}

// Reduces the per-block winners (one block) and records landmark number `picked`.
template <typename T>
__global__ void maxmin_pick_kernel(LandmarkMaxMinParams<T> params, index_t picked, const double* block_value,
                                   const index_t* block_index, int n_blocks) {
  __shared__ double shared_value[kThreads];
  __shared__ index_t shared_index[kThreads];
  double best_value = -2.0;
  index_t best_index = params.n_points;
  for (int b = threadIdx.x; b < n_blocks; b += blockDim.x) keep_best(best_value, best_index, block_value[b], block_index[b]);
  shared_value[threadIdx.x] = best_value;
  shared_index[threadIdx.x] = best_index;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      keep_best(shared_value[threadIdx.x], shared_index[threadIdx.x], shared_value[threadIdx.x + stride],
                shared_index[threadIdx.x + stride]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    params.landmark_index[picked] = shared_index[0];
    params.min_sq_distance[shared_index[0]] = kPicked;
  }
}

// Applies the last landmark (each round applied the previous one) and gives landmarks distance 0.
template <typename T>
__global__ void maxmin_finish_kernel(LandmarkMaxMinParams<T> params) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= params.n_points) return;
  if (params.min_sq_distance[i] == kPicked) {
    params.min_sq_distance[i] = 0.0;
    return;
  }
  const index_t last = params.landmark_index[params.n_landmarks - 1];
  double sq = 0.0;
  for (index_t f = 0; f < params.n_features; ++f) {
    const double diff = static_cast<double>(params.points[i * params.n_features + f]) -
                        static_cast<double>(params.points[last * params.n_features + f]);
    sq = __dadd_rn(sq, __dmul_rn(diff, diff));
  }
  if (sq < params.min_sq_distance[i]) params.min_sq_distance[i] = sq;
}

// Components one thread accumulates: each landmark distance is read once per this many components.
constexpr int kComponentsPerThread = 8;

// grid: (ceil(n_points / kThreads), ceil(n_components / kComponentsPerThread)); one thread per
// (point, group of components); reads of G coalesced across points, projection reads broadcast.
template <typename T>
__global__ void triangulate_kernel(LandmarkTriangulateParams<T> params) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= params.n_points) return;
  const index_t first_component = static_cast<index_t>(blockIdx.y) * kComponentsPerThread;
  const index_t remaining = params.n_components - first_component;
  const int n_here = static_cast<int>(remaining < kComponentsPerThread ? remaining : kComponentsPerThread);
  double accumulator[kComponentsPerThread];
#pragma unroll
  for (int c = 0; c < kComponentsPerThread; ++c) accumulator[c] = 0.0;
  for (index_t l = 0; l < params.n_landmarks; ++l) {
    const double d = static_cast<double>(params.landmark_geodesic[l * params.n_points + i]);
    const double centered = d * d - params.mean_sq_distance[l];
#pragma unroll
    for (int c = 0; c < kComponentsPerThread; ++c) {
      if (c < n_here) accumulator[c] += params.projection[(first_component + c) * params.n_landmarks + l] * centered;
    }
  }
#pragma unroll
  for (int c = 0; c < kComponentsPerThread; ++c) {
    if (c < n_here) params.embedding[i * params.n_components + first_component + c] = static_cast<T>(accumulator[c]);
  }
}

// One thread per query; writes of query_geodesic (L, M) coalesced across queries.
template <typename T>
__global__ void min_plus_kernel(LandmarkMinPlusParams<T> params) {
  const index_t m = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m >= params.n_queries) return;
  const index_t* index = params.neighbor_index + m * params.n_neighbors;
  const T* distance = params.neighbor_distance + m * params.n_neighbors;
  for (index_t l = 0; l < params.n_landmarks; ++l) {
    const T* row = params.landmark_geodesic + l * params.n_train;
    T best = INFINITY;
    for (index_t j = 0; j < params.n_neighbors; ++j) best = fmin(best, distance[j] + row[index[j]]);
    params.query_geodesic[l * params.n_queries + m] = best;
  }
}

}  // namespace

template <typename T>
void maxmin_landmarks_cuda(const LandmarkMaxMinParams<T>& params, void* stream_handle) {
  if (params.n_landmarks < 1 || params.n_landmarks > params.n_points) {
    throw std::invalid_argument("n_landmarks must be in [1, n_points], got " + std::to_string(params.n_landmarks));
  }
  if (params.first_landmark < 0 || params.first_landmark >= params.n_points) {
    throw std::invalid_argument("first_landmark must be in [0, n_points), got " + std::to_string(params.first_landmark));
  }
  cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  const unsigned int point_blocks = ceil_div(params.n_points, kThreads);
  const int update_blocks = static_cast<int>(point_blocks < 1024u ? point_blocks : 1024u);
  DeviceBuffer<double> block_value(update_blocks, stream);
  DeviceBuffer<index_t> block_index(update_blocks, stream);
  fill_infinity_kernel<<<point_blocks, kThreads, 0, stream>>>(params.min_sq_distance, params.n_points);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
  seed_kernel<<<1, 1, 0, stream>>>(params.landmark_index, params.min_sq_distance, params.first_landmark);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
  for (index_t picked = 1; picked < params.n_landmarks; ++picked) {
    maxmin_update_kernel<T><<<update_blocks, kThreads, 0, stream>>>(params, picked - 1, block_value.data(),
                                                                    block_index.data());
    ISOGAN_CUDA_CHECK(cudaGetLastError());
    maxmin_pick_kernel<T><<<1, kThreads, 0, stream>>>(params, picked, block_value.data(), block_index.data(),
                                                      update_blocks);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
  }
  maxmin_finish_kernel<T><<<point_blocks, kThreads, 0, stream>>>(params);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void triangulate_cuda(const LandmarkTriangulateParams<T>& params, void* stream_handle) {
  if (params.n_points == 0 || params.n_components == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  const dim3 grid(ceil_div(params.n_points, kThreads), ceil_div(params.n_components, kComponentsPerThread));
  triangulate_kernel<T><<<grid, kThreads, 0, stream>>>(params);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void landmark_min_plus_cuda(const LandmarkMinPlusParams<T>& params, void* stream_handle) {
  if (params.n_queries == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  min_plus_kernel<T><<<ceil_div(params.n_queries, kThreads), kThreads, 0, stream>>>(params);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
}

LandmarkDeviceBuffer::LandmarkDeviceBuffer(std::size_t n_bytes) : size_(n_bytes) {
  if (n_bytes == 0) return;
  ISOGAN_CUDA_CHECK(cudaMalloc(&data_, n_bytes));
}

LandmarkDeviceBuffer::~LandmarkDeviceBuffer() {
  if (data_ != nullptr) cudaFree(data_);
}

void LandmarkDeviceBuffer::upload(const void* host, std::size_t offset, std::size_t n_bytes) {
  if (n_bytes == 0) return;
  ISOGAN_CUDA_CHECK(cudaMemcpy(static_cast<char*>(data_) + offset, host, n_bytes, cudaMemcpyHostToDevice));
}

void LandmarkDeviceBuffer::download(void* host, std::size_t offset, std::size_t n_bytes) const {
  if (n_bytes == 0) return;
  ISOGAN_CUDA_CHECK(cudaMemcpy(host, static_cast<const char*>(data_) + offset, n_bytes, cudaMemcpyDeviceToHost));
}

template void maxmin_landmarks_cuda<float>(const LandmarkMaxMinParams<float>&, void*);
template void maxmin_landmarks_cuda<double>(const LandmarkMaxMinParams<double>&, void*);
template void triangulate_cuda<float>(const LandmarkTriangulateParams<float>&, void*);
template void triangulate_cuda<double>(const LandmarkTriangulateParams<double>&, void*);
template void landmark_min_plus_cuda<float>(const LandmarkMinPlusParams<float>&, void*);
template void landmark_min_plus_cuda<double>(const LandmarkMinPlusParams<double>&, void*);

}  // namespace isogan
