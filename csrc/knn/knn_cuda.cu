// CUDA kNN / radius search: one block per tile of queries (one query per thread), candidates
// streamed through shared memory tile by tile, a per-query max-heap in global scratch (touched only
// when a candidate beats the current k-th), never an N x N matrix.
//
// Reduced distances are accumulated exactly as on the CPU (float64, feature order, explicit
// round-to-nearest adds and multiplies so nvcc cannot fuse them), so the result equals the CPU
// result bit for bit for p = 1, 2, inf and precomputed; for general p the device pow() may differ
// from the host's by an ulp.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "common/cuda_utils.cuh"
#include "knn/knn.h"

namespace isogan::knn {
namespace {

constexpr int kThreads = 128;         // queries per block, one per thread
constexpr int kTileCandidates = 32;   // candidates per shared-memory tile
constexpr int kTileFeatures = 32;     // features per shared-memory slab
constexpr int kScanThreads = 1024;    // the single block of the row-offset scan

enum class Mode { KNearest, RadiusCount, RadiusFill };

struct KernelParams {
  index_t n_queries;
  index_t n_points;
  index_t n_features;  // D (N for Precomputed)
  double p;
  bool exclude_self;
  index_t n_neighbors;  // KNearest
  double reach;         // radius modes: the reduced radius
};

template <Metric M>
__device__ __forceinline__ double accumulate(double acc, double diff, double p) {
  if constexpr (M == Metric::Euclidean) {
    return __dadd_rn(acc, __dmul_rn(diff, diff));
  } else if constexpr (M == Metric::Manhattan) {
    return __dadd_rn(acc, fabs(diff));
  } else if constexpr (M == Metric::Chebyshev) {
    return fmax(acc, fabs(diff));
  } else {
    return __dadd_rn(acc, pow(fabs(diff), p));
  }
}

template <Metric M>
__device__ __forceinline__ double rdist_to_dist(double rdist, double p) {
  if constexpr (M == Metric::Euclidean) {
    return sqrt(rdist);
  } else if constexpr (M == Metric::Minkowski) {
    return pow(rdist, 1.0 / p);
  } else {
    return rdist;
  }
}

// (key, index) order of the result: smaller distance first, then smaller index.
__device__ __forceinline__ bool before(double key_a, index_t index_a, double key_b, index_t index_b) {
  return key_a < key_b || (key_a == key_b && index_a < index_b);
}

// Max-heap (by `before`) of one query's best candidates.
// keys: (k,) float64 scratch; indices: (k,) int64
struct DeviceHeap {
  double* keys;
  index_t* indices;
  index_t size;
  index_t capacity;

  __device__ bool full() const { return size == capacity; }

  __device__ void sift_down(index_t node) {
    while (true) {
      const index_t left = 2 * node + 1;
      if (left >= size) return;
      index_t largest = left;
      const index_t right = left + 1;
      if (right < size && before(keys[left], indices[left], keys[right], indices[right])) largest = right;
      if (!before(keys[node], indices[node], keys[largest], indices[largest])) return;
      swap(node, largest);
      node = largest;
    }
  }

  __device__ void swap(index_t a, index_t b) {
    const double key = keys[a];
    keys[a] = keys[b];
    keys[b] = key;
    const index_t index = indices[a];
    indices[a] = indices[b];
    indices[b] = index;
  }

  __device__ void offer(double key, index_t index) {
    if (size < capacity) {
      index_t node = size++;
      keys[node] = key;
      indices[node] = index;
      while (node > 0) {
        const index_t parent = (node - 1) / 2;
        if (!before(keys[parent], indices[parent], keys[node], indices[node])) break;
        swap(parent, node);
        node = parent;
      }
    } else if (before(key, index, keys[0], indices[0])) {
      keys[0] = key;
      indices[0] = index;
      sift_down(0);
    }
  }

  // Heap sort in place: ascending (key, index).
  __device__ void sort() {
    const index_t total = size;
    while (size > 1) {
      swap(0, size - 1);
      --size;
      sift_down(0);
    }
    size = total;
  }
};

// queries: (M, D) row-major (Precomputed: (M, N) distances); points: (N, D) row-major
// KNearest:    heap_keys (M, k) float64 scratch, indices (M, k) int64, distances (M, k)
// RadiusCount: indptr (M + 1,) receives per-row counts at [q + 1]
// RadiusFill:  indptr (M + 1,) row offsets; indices, distances (nnz,)
template <typename T, Metric M, Mode MODE>
__global__ void __launch_bounds__(kThreads)
    search_kernel(const T* __restrict__ queries, const T* __restrict__ points, KernelParams params,
                  double* __restrict__ heap_keys, index_t* __restrict__ indptr, index_t* __restrict__ indices,
                  T* __restrict__ distances) {
  __shared__ T query_tile[kThreads][kTileFeatures + 1];
  __shared__ T point_tile[kTileCandidates][kTileFeatures + 1];

  const index_t block_first = static_cast<index_t>(blockIdx.x) * kThreads;
  const index_t q = block_first + threadIdx.x;
  const bool active = q < params.n_queries;
  const index_t dims = params.n_features;
  const index_t n = params.n_points;

  DeviceHeap heap{nullptr, nullptr, 0, params.n_neighbors};
  if (MODE == Mode::KNearest && active) {
    heap.keys = heap_keys + q * params.n_neighbors;
    heap.indices = indices + q * params.n_neighbors;
  }
  index_t count = 0;
  index_t out = (MODE == Mode::RadiusFill && active) ? indptr[q] : 0;
  // Queries fit in one slab: load them once, not once per candidate tile.
  const bool query_resident = M != Metric::Precomputed && dims <= kTileFeatures;

  for (index_t j0 = 0; j0 < n; j0 += kTileCandidates) {
    double acc[kTileCandidates];
#pragma unroll
    for (int t = 0; t < kTileCandidates; ++t) acc[t] = 0.0;

    if constexpr (M == Metric::Precomputed) {
      // Row segment [j0, j0 + 32) of each query's distance row, loaded coalesced.
      __syncthreads();
      for (int e = threadIdx.x; e < kThreads * kTileCandidates; e += kThreads) {
        const int row = e / kTileCandidates, col = e % kTileCandidates;
        const index_t qq = block_first + row, j = j0 + col;
        query_tile[row][col] = (qq < params.n_queries && j < n) ? queries[qq * n + j] : T(0);
      }
      __syncthreads();
#pragma unroll
      for (int t = 0; t < kTileCandidates; ++t) acc[t] = static_cast<double>(query_tile[threadIdx.x][t]);
    } else {
      for (index_t d0 = 0; d0 < dims; d0 += kTileFeatures) {
        const int width = static_cast<int>(dims - d0 < kTileFeatures ? dims - d0 : kTileFeatures);
        __syncthreads();
        if (!query_resident || j0 == 0) {
          for (int e = threadIdx.x; e < kThreads * kTileFeatures; e += kThreads) {
            const int row = e / kTileFeatures, col = e % kTileFeatures;
            const index_t qq = block_first + row;
            query_tile[row][col] = (qq < params.n_queries && col < width) ? queries[qq * dims + d0 + col] : T(0);
          }
        }
        for (int e = threadIdx.x; e < kTileCandidates * kTileFeatures; e += kThreads) {
          const int row = e / kTileFeatures, col = e % kTileFeatures;
          const index_t j = j0 + row;
          point_tile[row][col] = (j < n && col < width) ? points[j * dims + d0 + col] : T(0);
        }
        __syncthreads();
        for (int c = 0; c < width; ++c) {
          const double query_value = static_cast<double>(query_tile[threadIdx.x][c]);
#pragma unroll
          for (int t = 0; t < kTileCandidates; ++t) {
            acc[t] = accumulate<M>(acc[t], query_value - static_cast<double>(point_tile[t][c]), params.p);
          }
        }
      }
    }

    if (active) {
#pragma unroll
      for (int t = 0; t < kTileCandidates; ++t) {
        const index_t j = j0 + t;
        if (j >= n || (params.exclude_self && j == q)) continue;
        if constexpr (MODE == Mode::KNearest) {
          if (!heap.full() || before(acc[t], j, heap.keys[0], heap.indices[0])) heap.offer(acc[t], j);
        } else if (acc[t] <= params.reach) {
          if constexpr (MODE == Mode::RadiusFill) {
            indices[out] = j;
            distances[out] = static_cast<T>(rdist_to_dist<M>(acc[t], params.p));
            ++out;
          } else {
            ++count;
          }
        }
      }
    }
  }

  if (!active) return;
  if constexpr (MODE == Mode::KNearest) {
    heap.sort();
    T* row = distances + q * params.n_neighbors;
    for (index_t r = 0; r < params.n_neighbors; ++r) row[r] = static_cast<T>(rdist_to_dist<M>(heap.keys[r], params.p));
  } else if constexpr (MODE == Mode::RadiusCount) {
    indptr[q + 1] = count;
    if (q == 0) indptr[0] = 0;
  }
}

// In-place inclusive scan of values[1..n] (values[0] == 0), one block: CSR row offsets from counts.
// values: (n + 1,) int64
__global__ void __launch_bounds__(kScanThreads) scan_counts_kernel(index_t* values, index_t n) {
  __shared__ index_t partial[kScanThreads];
  const index_t chunk = (n + kScanThreads - 1) / kScanThreads;
  const index_t begin = 1 + threadIdx.x * chunk;
  const index_t end = begin + chunk < n + 1 ? begin + chunk : n + 1;
  index_t sum = 0;
  for (index_t i = begin; i < end; ++i) sum += values[i];
  partial[threadIdx.x] = sum;
  __syncthreads();
  // Hillis-Steele inclusive scan of the per-thread sums.
  for (int offset = 1; offset < kScanThreads; offset <<= 1) {
    const index_t add = threadIdx.x >= offset ? partial[threadIdx.x - offset] : 0;
    __syncthreads();
    partial[threadIdx.x] += add;
    __syncthreads();
  }
  index_t running = threadIdx.x > 0 ? partial[threadIdx.x - 1] : 0;
  for (index_t i = begin; i < end; ++i) {
    running += values[i];
    values[i] = running;
  }
}

KernelParams kernel_params(const SearchParams& params, index_t n_neighbors, double radius) {
  KernelParams kp{};
  kp.n_queries = params.n_queries;
  kp.n_points = params.n_points;
  kp.n_features = params.metric == Metric::Precomputed ? params.n_points : params.n_features;
  kp.p = params.p;
  kp.exclude_self = params.exclude_self;
  kp.n_neighbors = n_neighbors;
  switch (params.metric) {
    case Metric::Euclidean:
      kp.reach = radius * radius;
      break;
    case Metric::Minkowski:
      kp.reach = std::pow(radius, params.p);
      break;
    default:
      kp.reach = radius;
  }
  return kp;
}

template <typename T, Mode MODE>
void launch(const T* queries, const T* points, const SearchParams& params, const KernelParams& kp, double* heap_keys,
            index_t* indptr, index_t* indices, T* distances, cudaStream_t stream) {
  const dim3 grid(ceil_div(static_cast<std::size_t>(params.n_queries), kThreads));
  switch (params.metric) {
    case Metric::Euclidean:
      search_kernel<T, Metric::Euclidean, MODE><<<grid, kThreads, 0, stream>>>(queries, points, kp, heap_keys, indptr,
                                                                                indices, distances);
      break;
    case Metric::Manhattan:
      search_kernel<T, Metric::Manhattan, MODE><<<grid, kThreads, 0, stream>>>(queries, points, kp, heap_keys, indptr,
                                                                                indices, distances);
      break;
    case Metric::Chebyshev:
      search_kernel<T, Metric::Chebyshev, MODE><<<grid, kThreads, 0, stream>>>(queries, points, kp, heap_keys, indptr,
                                                                                indices, distances);
      break;
    case Metric::Minkowski:
      search_kernel<T, Metric::Minkowski, MODE><<<grid, kThreads, 0, stream>>>(queries, points, kp, heap_keys, indptr,
                                                                                indices, distances);
      break;
    case Metric::Precomputed:
      search_kernel<T, Metric::Precomputed, MODE><<<grid, kThreads, 0, stream>>>(queries, points, kp, heap_keys,
                                                                                  indptr, indices, distances);
      break;
  }
  ISOGAN_CUDA_CHECK(cudaGetLastError());
}

cudaStream_t as_stream(std::uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

// A private non-blocking stream for the host-array entry points; destroyed after its buffers.
class OwnedStream {
 public:
  OwnedStream() { ISOGAN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  OwnedStream(const OwnedStream&) = delete;
  OwnedStream& operator=(const OwnedStream&) = delete;
  ~OwnedStream() {
    if (cudaStreamDestroy(stream_) != cudaSuccess) cudaGetLastError();
  }
  cudaStream_t get() const { return stream_; }
  std::uintptr_t handle() const { return reinterpret_cast<std::uintptr_t>(stream_); }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace

template <typename T>
void kneighbors_cuda(const T* queries, const T* points, const SearchParams& params, index_t n_neighbors,
                     T* distances, index_t* indices, std::uintptr_t stream_handle) {
  if (params.n_queries == 0) return;
  if (n_neighbors < 1 || n_neighbors > params.n_points - (params.exclude_self ? 1 : 0)) {
    throw std::invalid_argument("n_neighbors = " + std::to_string(n_neighbors) + " is out of range for " +
                                std::to_string(params.n_points) + " points");
  }
  const DeviceGuard guard(device_of(queries));
  cudaStream_t stream = as_stream(stream_handle);
  const KernelParams kp = kernel_params(params, n_neighbors, 0.0);
  DeviceBuffer<double> heap_keys(static_cast<std::size_t>(params.n_queries * n_neighbors), stream);
  launch<T, Mode::KNearest>(queries, points, params, kp, heap_keys.data(), nullptr, indices, distances, stream);
}

template <typename T>
index_t radius_count_cuda(const T* queries, const T* points, const SearchParams& params, double radius,
                          index_t* indptr, std::uintptr_t stream_handle) {
  const DeviceGuard guard(device_of(indptr));
  cudaStream_t stream = as_stream(stream_handle);
  if (params.n_queries == 0) {
    ISOGAN_CUDA_CHECK(cudaMemsetAsync(indptr, 0, sizeof(index_t), stream));
    return 0;
  }
  const KernelParams kp = kernel_params(params, 0, radius);
  launch<T, Mode::RadiusCount>(queries, points, params, kp, nullptr, indptr, nullptr, nullptr, stream);
  scan_counts_kernel<<<1, kScanThreads, 0, stream>>>(indptr, params.n_queries);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
  index_t nnz = 0;
  ISOGAN_CUDA_CHECK(cudaMemcpyAsync(&nnz, indptr + params.n_queries, sizeof(index_t), cudaMemcpyDeviceToHost, stream));
  ISOGAN_CUDA_CHECK(cudaStreamSynchronize(stream));
  return nnz;
}

template <typename T>
void radius_fill_cuda(const T* queries, const T* points, const SearchParams& params, double radius,
                      const index_t* indptr, index_t* indices, T* distances, std::uintptr_t stream_handle) {
  if (params.n_queries == 0) return;
  const DeviceGuard guard(device_of(queries));
  const KernelParams kp = kernel_params(params, 0, radius);
  launch<T, Mode::RadiusFill>(queries, points, params, kp, nullptr, const_cast<index_t*>(indptr), indices, distances,
                              as_stream(stream_handle));
}

template <typename T>
void kneighbors_cuda_host(const T* queries, const T* points, const SearchParams& params, index_t n_neighbors,
                          T* distances, index_t* indices) {
  if (params.n_queries == 0) return;
  const bool precomputed = params.metric == Metric::Precomputed;
  const std::size_t query_count = static_cast<std::size_t>(params.n_queries * params.n_features);
  const std::size_t point_count = precomputed ? 0 : static_cast<std::size_t>(params.n_points * params.n_features);
  const std::size_t out_count = static_cast<std::size_t>(params.n_queries * n_neighbors);
  OwnedStream stream;
  DeviceBuffer<T> d_queries(query_count, stream.get());
  DeviceBuffer<T> d_points(point_count, stream.get());
  DeviceBuffer<T> d_distances(out_count, stream.get());
  DeviceBuffer<index_t> d_indices(out_count, stream.get());
  ISOGAN_CUDA_CHECK(
      cudaMemcpyAsync(d_queries.data(), queries, query_count * sizeof(T), cudaMemcpyHostToDevice, stream.get()));
  if (!precomputed) {
    ISOGAN_CUDA_CHECK(
        cudaMemcpyAsync(d_points.data(), points, point_count * sizeof(T), cudaMemcpyHostToDevice, stream.get()));
  }
  kneighbors_cuda<T>(d_queries.data(), precomputed ? d_queries.data() : d_points.data(), params, n_neighbors,
                     d_distances.data(), d_indices.data(), stream.handle());
  ISOGAN_CUDA_CHECK(
      cudaMemcpyAsync(distances, d_distances.data(), out_count * sizeof(T), cudaMemcpyDeviceToHost, stream.get()));
  ISOGAN_CUDA_CHECK(
      cudaMemcpyAsync(indices, d_indices.data(), out_count * sizeof(index_t), cudaMemcpyDeviceToHost, stream.get()));
  ISOGAN_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
}

template <typename T>
RadiusResult<T> radius_neighbors_cuda_host(const T* queries, const T* points, const SearchParams& params,
                                           double radius) {
  RadiusResult<T> result;
  result.indptr.assign(static_cast<std::size_t>(params.n_queries + 1), 0);
  if (params.n_queries == 0) return result;
  const bool precomputed = params.metric == Metric::Precomputed;
  const std::size_t query_count = static_cast<std::size_t>(params.n_queries * params.n_features);
  const std::size_t point_count = precomputed ? 0 : static_cast<std::size_t>(params.n_points * params.n_features);
  OwnedStream stream;
  DeviceBuffer<T> d_queries(query_count, stream.get());
  DeviceBuffer<T> d_points(point_count, stream.get());
  DeviceBuffer<index_t> d_indptr(result.indptr.size(), stream.get());
  ISOGAN_CUDA_CHECK(
      cudaMemcpyAsync(d_queries.data(), queries, query_count * sizeof(T), cudaMemcpyHostToDevice, stream.get()));
  if (!precomputed) {
    ISOGAN_CUDA_CHECK(
        cudaMemcpyAsync(d_points.data(), points, point_count * sizeof(T), cudaMemcpyHostToDevice, stream.get()));
  }
  const T* d_x = precomputed ? d_queries.data() : d_points.data();
  const index_t nnz = radius_count_cuda<T>(d_queries.data(), d_x, params, radius, d_indptr.data(), stream.handle());
  DeviceBuffer<index_t> d_indices(static_cast<std::size_t>(nnz), stream.get());
  DeviceBuffer<T> d_distances(static_cast<std::size_t>(nnz), stream.get());
  result.indices.resize(static_cast<std::size_t>(nnz));
  result.distances.resize(static_cast<std::size_t>(nnz));
  if (nnz > 0) {
    radius_fill_cuda<T>(d_queries.data(), d_x, params, radius, d_indptr.data(), d_indices.data(), d_distances.data(),
                        stream.handle());
    ISOGAN_CUDA_CHECK(cudaMemcpyAsync(result.indices.data(), d_indices.data(), nnz * sizeof(index_t),
                                      cudaMemcpyDeviceToHost, stream.get()));
    ISOGAN_CUDA_CHECK(cudaMemcpyAsync(result.distances.data(), d_distances.data(), nnz * sizeof(T),
                                      cudaMemcpyDeviceToHost, stream.get()));
  }
  ISOGAN_CUDA_CHECK(cudaMemcpyAsync(result.indptr.data(), d_indptr.data(), result.indptr.size() * sizeof(index_t),
                                    cudaMemcpyDeviceToHost, stream.get()));
  ISOGAN_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  return result;
}

#define ISOGAN_KNN_CUDA_INSTANTIATE(T)                                                                               \
  template void kneighbors_cuda<T>(const T*, const T*, const SearchParams&, index_t, T*, index_t*, std::uintptr_t); \
  template index_t radius_count_cuda<T>(const T*, const T*, const SearchParams&, double, index_t*, std::uintptr_t); \
  template void radius_fill_cuda<T>(const T*, const T*, const SearchParams&, double, const index_t*, index_t*, T*,  \
                                    std::uintptr_t);                                                               \
  template void kneighbors_cuda_host<T>(const T*, const T*, const SearchParams&, index_t, T*, index_t*);           \
  template RadiusResult<T> radius_neighbors_cuda_host<T>(const T*, const T*, const SearchParams&, double);

ISOGAN_KNN_CUDA_INSTANTIATE(float)
ISOGAN_KNN_CUDA_INSTANTIATE(double)
#undef ISOGAN_KNN_CUDA_INSTANTIATE

}  // namespace isogan::knn
