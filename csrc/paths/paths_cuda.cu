// CUDA twins of paths_cpu.cpp: batched multi-source shortest paths (frontier Bellman-Ford),
// blocked Floyd-Warshall with min-plus tiles, and the out-of-sample min-plus product.
#include <algorithm>
#include <cstdint>

#include "common/cuda_utils.cuh"
#include "paths/paths.h"

namespace isogan {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ T device_infinity();
template <>
__device__ __forceinline__ float device_infinity<float>() {
  return __int_as_float(0x7f800000);
}
template <>
__device__ __forceinline__ double device_infinity<double>() {
  return __longlong_as_double(0x7ff0000000000000LL);
}

// Atomic min on a non-negative float (+inf included): for such values the IEEE bit patterns,
// read as signed integers, order exactly like the floats. Returns whether `value` lowered it.
__device__ __forceinline__ bool atomic_min_non_negative(float* address, float value) {
  const int previous = atomicMin(reinterpret_cast<int*>(address), __float_as_int(value));
  return value < __int_as_float(previous);
}
__device__ __forceinline__ bool atomic_min_non_negative(double* address, double value) {
  const long long previous = atomicMin(reinterpret_cast<long long*>(address), __double_as_longlong(value));
  return value < __longlong_as_double(previous);
}

unsigned int grid_for(index_t n_items) {
  // Grid-stride loops cover the rest; 65535 * 8 blocks keep every SM busy at any size.
  return static_cast<unsigned int>(std::max<index_t>(1, std::min<index_t>((n_items + kThreads - 1) / kThreads, 65535 * 8)));
}

// ------------------------------------------------------------------ batched Bellman-Ford

// Rows [0, n_batch) of `out` start as +inf with 0 at their source, which is the only active node.
// out: (n_batch, n_nodes); active: (n_batch, n_nodes) flags; sources: (n_batch,).
template <typename T>
__global__ void init_sources_kernel(T* out, std::uint8_t* active, const index_t* sources, index_t n_batch,
                                    index_t n_nodes) {
  const index_t total = n_batch * n_nodes;
  for (index_t flat = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t row = flat / n_nodes;
    const bool is_source = flat - row * n_nodes == sources[row];
    out[flat] = is_source ? T(0) : device_infinity<T>();
    active[flat] = is_source ? 1 : 0;
  }
}

// One round: every active (source, node) relaxes its edges with atomic min; nodes that improved
// become active in the next round. Clears `active` as it goes so it can serve as the next round's
// `next_active`. out: (n_batch, n_nodes); active, next_active: (n_batch, n_nodes) flags.
template <typename T>
__global__ void relax_round_kernel(CsrGraphView<T> graph, T* out, std::uint8_t* active, std::uint8_t* next_active,
                                   index_t n_batch, int* changed) {
  const index_t n_nodes = graph.n_nodes;
  const index_t total = n_batch * n_nodes;
  for (index_t flat = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<index_t>(gridDim.x) * blockDim.x) {
    if (!active[flat]) continue;
    active[flat] = 0;
    const index_t row = flat / n_nodes;
    const index_t node = flat - row * n_nodes;
    T* distances = out + row * n_nodes;
    // A concurrent atomic may lower distances[node] after this read; that thread also re-activates
    // the node, so the lower value is relaxed in the next round.
    const T distance = distances[node];
    for (index_t e = graph.indptr[node]; e < graph.indptr[node + 1]; ++e) {
      const std::int32_t target = graph.indices[e];
      const T candidate = distance + graph.weights[e];
      if (candidate < distances[target] && atomic_min_non_negative(distances + target, candidate)) {
        next_active[row * n_nodes + target] = 1;
        *changed = 1;
      }
    }
  }
}

constexpr int kRoundsPerCheck = 4;

// ------------------------------------------------------------------ Floyd-Warshall

constexpr int kTile = 64;        // pivot block and output tile edge
constexpr int kTileThreads = 16; // 16 x 16 threads, each owning 4 x 4 entries of a tile
constexpr int kPerThread = kTile / kTileThreads;
constexpr int kChunk = 32;       // pivots staged in shared memory at a time by the min-plus kernel

// Phase 1: close the diagonal tile of pivot block `kt` (sequential pivots in shared memory).
// dist: (n, n) row-major.
template <typename T>
__global__ void floyd_diagonal_kernel(T* dist, index_t n, index_t kt) {
  __shared__ T tile[kTile][kTile + 1];
  const index_t base = kt * kTile;
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int r = 0; r < kPerThread; ++r) {
    for (int c = 0; c < kPerThread; ++c) {
      const int i = ty + r * kTileThreads, j = tx + c * kTileThreads;
      const bool inside = base + i < n && base + j < n;
      tile[i][j] = inside ? dist[(base + i) * n + base + j] : device_infinity<T>();
    }
  }
  __syncthreads();
  for (int k = 0; k < kTile; ++k) {
    for (int r = 0; r < kPerThread; ++r) {
      for (int c = 0; c < kPerThread; ++c) {
        const int i = ty + r * kTileThreads, j = tx + c * kTileThreads;
        const T candidate = tile[i][k] + tile[k][j];
        // Row and column k never decrease during pivot k (tile[k][k] == 0), so they are never
        // written while others read them.
        if (candidate < tile[i][j]) tile[i][j] = candidate;
      }
    }
    __syncthreads();
  }
  for (int r = 0; r < kPerThread; ++r) {
    for (int c = 0; c < kPerThread; ++c) {
      const int i = ty + r * kTileThreads, j = tx + c * kTileThreads;
      if (base + i < n && base + j < n) dist[(base + i) * n + base + j] = tile[i][j];
    }
  }
}

// Phases 2 and 3: tile (it, jt) <- min(tile, dist[rows it, pivots kt] (min,+) dist[pivots kt, cols jt]).
// Phase 2 (row and column panels of kt, through the closed diagonal tile): blockIdx.x = panel
// tile, blockIdx.y = 0 for the row panel, 1 for the column panel. Phase 3: blockIdx = (jt, it),
// tiles in row or column kt skipped. A block reads its own output tile as an operand only in
// phase 2, and then all its reads finish (last __syncthreads) before its writes start.
// dist: (n, n) row-major.
template <typename T>
__global__ void floyd_min_plus_kernel(T* dist, index_t n, index_t kt, int phase) {
  index_t it, jt;
  if (phase == 2) {
    if (blockIdx.x == kt) return;
    it = blockIdx.y == 0 ? kt : blockIdx.x;
    jt = blockIdx.y == 0 ? blockIdx.x : kt;
  } else {
    it = blockIdx.y;
    jt = blockIdx.x;
    if (it == kt || jt == kt) return;
  }
  __shared__ T rows_by_pivot[kTile][kChunk + 1];  // dist[it rows, pivot chunk]
  __shared__ T pivot_by_cols[kChunk][kTile];      // dist[pivot chunk, jt cols]
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int thread = ty * kTileThreads + tx;
  const index_t row0 = it * kTile, col0 = jt * kTile, pivot0 = kt * kTile;

  T best[kPerThread][kPerThread];
  for (int r = 0; r < kPerThread; ++r) {
    for (int c = 0; c < kPerThread; ++c) {
      const index_t i = row0 + ty + r * kTileThreads, j = col0 + tx + c * kTileThreads;
      best[r][c] = (i < n && j < n) ? dist[i * n + j] : device_infinity<T>();
    }
  }
  for (int chunk = 0; chunk < kTile; chunk += kChunk) {
    for (int slot = thread; slot < kTile * kChunk; slot += kTileThreads * kTileThreads) {
      const int i = slot / kChunk, k = slot % kChunk;
      const index_t gi = row0 + i, gk = pivot0 + chunk + k;
      rows_by_pivot[i][k] = (gi < n && gk < n) ? dist[gi * n + gk] : device_infinity<T>();
      const int kk = slot / kTile, j = slot % kTile;
      const index_t gkk = pivot0 + chunk + kk, gj = col0 + j;
      pivot_by_cols[kk][j] = (gkk < n && gj < n) ? dist[gkk * n + gj] : device_infinity<T>();
    }
    __syncthreads();
#pragma unroll 4
    for (int k = 0; k < kChunk; ++k) {
      T via_row[kPerThread], via_col[kPerThread];
      for (int r = 0; r < kPerThread; ++r) via_row[r] = rows_by_pivot[ty + r * kTileThreads][k];
      for (int c = 0; c < kPerThread; ++c) via_col[c] = pivot_by_cols[k][tx + c * kTileThreads];
      for (int r = 0; r < kPerThread; ++r) {
        for (int c = 0; c < kPerThread; ++c) {
          const T candidate = via_row[r] + via_col[c];
          best[r][c] = candidate < best[r][c] ? candidate : best[r][c];
        }
      }
    }
    __syncthreads();
  }
  for (int r = 0; r < kPerThread; ++r) {
    for (int c = 0; c < kPerThread; ++c) {
      const index_t i = row0 + ty + r * kTileThreads, j = col0 + tx + c * kTileThreads;
      if (i < n && j < n) dist[i * n + j] = best[r][c];
    }
  }
}

// Dense adjacency -> Floyd-Warshall start, one thread per unordered pair so that no entry is
// written by two threads. dist: (n, n) row-major, in place.
template <typename T>
__global__ void dense_to_floyd_start_kernel(T* dist, index_t n) {
  const index_t total = n * n;
  for (index_t flat = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t i = flat / n, j = flat - (flat / n) * n;
    if (i == j) {
      dist[flat] = T(0);
    } else if (i < j) {
      T forward = dist[i * n + j], backward = dist[j * n + i];
      forward = forward == T(0) ? device_infinity<T>() : forward;
      backward = backward == T(0) ? device_infinity<T>() : backward;
      const T weight = forward < backward ? forward : backward;
      dist[i * n + j] = weight;
      dist[j * n + i] = weight;
    }
  }
}

// Every entry +inf, the diagonal 0. dist: (n, n) row-major.
template <typename T>
__global__ void fill_floyd_start_kernel(T* dist, index_t n) {
  const index_t total = n * n;
  for (index_t flat = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t row = flat / n;
    dist[flat] = flat - row * n == row ? T(0) : device_infinity<T>();
  }
}

// One warp per row writes that row's stored edges (columns are unique within a row, so no entry
// is written twice; self loops, absent from a symmetrised graph, would keep the 0 diagonal).
// dist: (n_nodes, n_nodes) row-major.
template <typename T>
__global__ void scatter_csr_edges_kernel(CsrGraphView<T> graph, T* dist) {
  constexpr int kWarp = 32;
  const index_t warps_per_grid = static_cast<index_t>(gridDim.x) * (blockDim.x / kWarp);
  const int lane = threadIdx.x % kWarp;
  for (index_t row = blockIdx.x * static_cast<index_t>(blockDim.x / kWarp) + threadIdx.x / kWarp;
       row < graph.n_nodes; row += warps_per_grid) {
    for (index_t e = graph.indptr[row] + lane; e < graph.indptr[row + 1]; e += kWarp) {
      const index_t column = graph.indices[e];
      if (column != row) dist[row * graph.n_nodes + column] = graph.weights[e];
    }
  }
}

// ------------------------------------------------------------------ min-plus transform

// One thread per (query, column); neighbours visited in stored order, as on the CPU.
template <typename T>
__global__ void min_plus_kernel(MinPlusParams<T> params) {
  const index_t query = blockIdx.y;
  for (index_t j = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; j < params.n_nodes;
       j += static_cast<index_t>(gridDim.x) * blockDim.x) {
    T best = device_infinity<T>();
    for (index_t e = params.query_indptr[query]; e < params.query_indptr[query + 1]; ++e) {
      const T candidate = params.neighbor_dist[e] + params.dist[params.neighbor_index[e] * params.n_nodes + j];
      best = candidate < best ? candidate : best;
    }
    params.out[query * params.n_nodes + j] = best;
  }
}

}  // namespace

template <typename T>
void shortest_paths_cuda(const CsrGraphView<T>& graph, const index_t* sources, index_t n_sources, T* out,
                         std::uintptr_t stream_handle, index_t flag_budget_bytes) {
  const index_t n_nodes = graph.n_nodes;
  if (n_sources == 0 || n_nodes == 0) return;
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  const index_t batch = shortest_paths_sources_per_batch(n_nodes, n_sources, flag_budget_bytes);
  DeviceBuffer<std::uint8_t> active(static_cast<std::size_t>(batch * n_nodes), stream);
  DeviceBuffer<std::uint8_t> next_active(static_cast<std::size_t>(batch * n_nodes), stream);
  DeviceBuffer<int> changed(1, stream);
  for (index_t first = 0; first < n_sources; first += batch) {
    const index_t n_batch = std::min(batch, n_sources - first);
    T* rows = out + first * n_nodes;
    std::uint8_t* current = active.data();
    std::uint8_t* upcoming = next_active.data();
    init_sources_kernel<T><<<grid_for(n_batch * n_nodes), kThreads, 0, stream>>>(rows, current, sources + first,
                                                                                  n_batch, n_nodes);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
    ISOGAN_CUDA_CHECK(cudaMemsetAsync(upcoming, 0, static_cast<std::size_t>(n_batch * n_nodes), stream));
    for (;;) {
      ISOGAN_CUDA_CHECK(cudaMemsetAsync(changed.data(), 0, sizeof(int), stream));
      for (int round = 0; round < kRoundsPerCheck; ++round) {
        relax_round_kernel<T><<<grid_for(n_batch * n_nodes), kThreads, 0, stream>>>(graph, rows, current, upcoming,
                                                                                     n_batch, changed.data());
        ISOGAN_CUDA_CHECK(cudaGetLastError());
        std::swap(current, upcoming);
      }
      int host_changed = 0;
      ISOGAN_CUDA_CHECK(cudaMemcpyAsync(&host_changed, changed.data(), sizeof(int), cudaMemcpyDeviceToHost, stream));
      ISOGAN_CUDA_CHECK(cudaStreamSynchronize(stream));
      if (!host_changed) break;
    }
  }
}

template <typename T>
void floyd_warshall_cuda(T* dist, index_t n, std::uintptr_t stream_handle) {
  if (n == 0) return;
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  const index_t n_tiles = (n + kTile - 1) / kTile;
  const dim3 threads(kTileThreads, kTileThreads);
  for (index_t kt = 0; kt < n_tiles; ++kt) {
    floyd_diagonal_kernel<T><<<1, threads, 0, stream>>>(dist, n, kt);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
    floyd_min_plus_kernel<T><<<dim3(static_cast<unsigned int>(n_tiles), 2), threads, 0, stream>>>(dist, n, kt, 2);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
    floyd_min_plus_kernel<T><<<dim3(static_cast<unsigned int>(n_tiles), static_cast<unsigned int>(n_tiles)), threads, 0,
                               stream>>>(dist, n, kt, 3);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
  }
}

template <typename T>
void csr_to_floyd_start_cuda(const CsrGraphView<T>& graph, T* dist, std::uintptr_t stream_handle) {
  const index_t n = graph.n_nodes;
  if (n == 0) return;
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  fill_floyd_start_kernel<T><<<grid_for(n * n), kThreads, 0, stream>>>(dist, n);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
  // kThreads / 32 rows per block.
  scatter_csr_edges_kernel<T><<<grid_for(n * 32), kThreads, 0, stream>>>(graph, dist);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void dense_graph_to_floyd_start_cuda(T* dist, index_t n, std::uintptr_t stream_handle) {
  if (n == 0) return;
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  dense_to_floyd_start_kernel<T><<<grid_for(n * n), kThreads, 0, stream>>>(dist, n);
  ISOGAN_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void min_plus_cuda(const MinPlusParams<T>& params, std::uintptr_t stream_handle, index_t max_queries_per_launch) {
  if (params.n_queries == 0 || params.n_nodes == 0) return;
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  // Queries on grid.y, columns on grid.x.
  for (index_t first = 0; first < params.n_queries; first += max_queries_per_launch) {
    MinPlusParams<T> part = params;
    part.n_queries = std::min(max_queries_per_launch, params.n_queries - first);
    part.query_indptr = params.query_indptr + first;
    part.out = params.out + first * params.n_nodes;
    const unsigned int column_blocks = static_cast<unsigned int>(std::min<index_t>((params.n_nodes + kThreads - 1) / kThreads, 1024));
    min_plus_kernel<T><<<dim3(column_blocks, static_cast<unsigned int>(part.n_queries)), kThreads, 0, stream>>>(part);
    ISOGAN_CUDA_CHECK(cudaGetLastError());
  }
}

#define ISOGAN_INSTANTIATE_PATHS_CUDA(T)                                                                           \
  template void shortest_paths_cuda<T>(const CsrGraphView<T>&, const index_t*, index_t, T*, std::uintptr_t, index_t); \
  template void floyd_warshall_cuda<T>(T*, index_t, std::uintptr_t);                                               \
  template void dense_graph_to_floyd_start_cuda<T>(T*, index_t, std::uintptr_t);                                   \
  template void min_plus_cuda<T>(const MinPlusParams<T>&, std::uintptr_t, index_t);                              \
  template void csr_to_floyd_start_cuda<T>(const CsrGraphView<T>&, T*, std::uintptr_t);

ISOGAN_INSTANTIATE_PATHS_CUDA(float)
ISOGAN_INSTANTIATE_PATHS_CUDA(double)

}  // namespace isogan
