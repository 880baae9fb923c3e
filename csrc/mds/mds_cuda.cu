// CUDA twins of mds_cpu.cpp. The product (D o D) W is a tall-skinny GEMM whose big operand is
// squared on the fly: each block owns kTileRows rows of D and kTileCols columns of W, streams D
// through shared memory kTileK columns at a time (converted to double and squared once, on load)
// and keeps a 4 x 4 register tile of double accumulators per thread, so D is read from HBM once per
// kTileCols vectors. The (N, b) vector blocks come from the host eigensolver and go back to it.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/cuda_utils.cuh"
#include "mds/mds.h"

namespace isogan {
namespace {

constexpr int kThreads = 256;
constexpr int kThreadRows = 4;                           // rows of D per thread
constexpr int kThreadCols = 4;                           // vectors per thread
constexpr int kTileCols = 16;                            // vectors per block
constexpr int kColThreads = kTileCols / kThreadCols;     // 4
constexpr int kRowThreads = kThreads / kColThreads;      // 64
constexpr int kTileRows = kRowThreads * kThreadRows;     // 256 rows of D per block
constexpr int kTileK = 16;                               // columns of D per shared-memory step
static_assert(kTileK * kTileCols == kThreads, "one W element per thread and step");

// acc = (D o D) W for one (kTileRows, kTileCols) tile of the output.
// dist: (n_rows, n_cols) row-major; w: (n_cols, ldw) row-major double, ldw a multiple of kTileCols;
// acc: (n_rows, ldw) row-major double.
template <typename T>
__global__ void __launch_bounds__(kThreads) squared_matmul_kernel(const T* __restrict__ dist, index_t n_rows,
                                                                  index_t n_cols, const double* __restrict__ w,
                                                                  index_t ldw, double* __restrict__ acc) {
  // Transposed (k-major) and padded by one so that the row-wise loads and the k-wise reads are
  // both free of bank conflicts.
  __shared__ double squares[kTileK][kTileRows + 1];
  __shared__ double w_tile[kTileK][kTileCols];

  const int thread = threadIdx.x;
  const int thread_col = thread % kColThreads;
  const int thread_row = thread / kColThreads;
  const index_t row0 = static_cast<index_t>(blockIdx.x) * kTileRows;
  const index_t col0 = static_cast<index_t>(blockIdx.y) * kTileCols;

  double sum[kThreadRows][kThreadCols] = {};
  // Loader mapping: consecutive threads read consecutive columns of one row of D (coalesced).
  const int load_k = thread % kTileK;
  const int load_row = thread / kTileK;
  constexpr int kLoadRowStep = kThreads / kTileK;  // 16

  for (index_t k0 = 0; k0 < n_cols; k0 += kTileK) {
    const index_t k = k0 + load_k;
#pragma unroll
    for (int r = load_row; r < kTileRows; r += kLoadRowStep) {
      const index_t row = row0 + r;
      double value = 0.0;
      if (row < n_rows && k < n_cols) value = static_cast<double>(dist[row * n_cols + k]);
      squares[load_k][r] = value * value;
    }
    {
      const int wk = thread / kTileCols;
      const int wc = thread % kTileCols;
      const index_t wrow = k0 + wk;
      w_tile[wk][wc] = wrow < n_cols ? w[wrow * ldw + col0 + wc] : 0.0;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      double a[kThreadRows];
      double b[kThreadCols];
#pragma unroll
      for (int r = 0; r < kThreadRows; ++r) a[r] = squares[kk][thread_row + r * kRowThreads];
#pragma unroll
      for (int c = 0; c < kThreadCols; ++c) b[c] = w_tile[kk][thread_col * kThreadCols + c];
#pragma unroll
      for (int r = 0; r < kThreadRows; ++r) {
#pragma unroll
        for (int c = 0; c < kThreadCols; ++c) sum[r][c] = fma(a[r], b[c], sum[r][c]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < kThreadRows; ++r) {
    const index_t row = row0 + thread_row + r * kRowThreads;
    if (row >= n_rows) continue;
#pragma unroll
    for (int c = 0; c < kThreadCols; ++c) acc[row * ldw + col0 + thread_col * kThreadCols + c] = sum[r][c];
  }
}

// row_means[i] = -1/2 mean_j D[i, j]^2, one warp per row.
// dist: (n_rows, n_cols) row-major; row_means: (n_rows,) double.
template <typename T>
__global__ void squared_row_means_kernel(const T* __restrict__ dist, index_t n_rows, index_t n_cols,
                                         double* __restrict__ row_means) {
  const index_t row = static_cast<index_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= n_rows) return;
  const T* source = dist + row * n_cols;
  double sum = 0.0;
  for (index_t j = lane; j < n_cols; j += 32) {
    const double d = static_cast<double>(source[j]);
    sum += d * d;
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0) row_means[row] = n_cols > 0 ? -0.5 * sum / static_cast<double>(n_cols) : 0.0;
}

// Non-negative doubles order like their bit patterns, so an integer atomicMax is a double max.
__device__ void atomic_max_nonnegative(unsigned long long* target, double value) {
  atomicMax(target, static_cast<unsigned long long>(__double_as_longlong(value)));
}

constexpr int kSymTile = 32;
constexpr int kSymRows = 8;

// report[0] = max |D_ij - D_ji|, report[1] = max |D_ij|, over tile pairs (I, J) with J >= I.
// dist: (n, n) row-major; report: 2 doubles stored as ordered bit patterns, zero-initialised.
template <typename T>
__global__ void symmetry_kernel(const T* __restrict__ dist, index_t n, unsigned long long* report) {
  if (blockIdx.y > blockIdx.x) return;
  __shared__ double lower[kSymTile][kSymTile + 1];
  const index_t tile_i = blockIdx.y, tile_j = blockIdx.x;
  // Load the (J, I) tile transposed, then compare with the (I, J) tile element by element.
  for (int r = threadIdx.y; r < kSymTile; r += kSymRows) {
    const index_t row = tile_j * kSymTile + r, col = tile_i * kSymTile + threadIdx.x;
    lower[threadIdx.x][r] = (row < n && col < n) ? static_cast<double>(dist[row * n + col]) : 0.0;
  }
  __syncthreads();
  double max_asymmetry = 0.0, max_abs = 0.0;
  for (int r = threadIdx.y; r < kSymTile; r += kSymRows) {
    const index_t row = tile_i * kSymTile + r, col = tile_j * kSymTile + threadIdx.x;
    if (row < n && col < n) {
      const double upper = static_cast<double>(dist[row * n + col]);
      const double mirrored = lower[r][threadIdx.x];
      max_asymmetry = fmax(max_asymmetry, fabs(upper - mirrored));
      max_abs = fmax(max_abs, fmax(fabs(upper), fabs(mirrored)));
    }
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    max_asymmetry = fmax(max_asymmetry, __shfl_down_sync(0xffffffffu, max_asymmetry, offset));
    max_abs = fmax(max_abs, __shfl_down_sync(0xffffffffu, max_abs, offset));
  }
  if (threadIdx.x == 0) {
    atomic_max_nonnegative(report, max_asymmetry);
    atomic_max_nonnegative(report + 1, max_abs);
  }
}

// acc (n_rows, ldw) = (D o D) w_padded on the device, back on the host. Synchronises the stream.
template <typename T>
std::vector<double> squared_product_cuda(const T* dist, index_t n_rows, index_t n_cols,
                                         const std::vector<double>& w_padded, index_t ldw, cudaStream_t stream) {
  std::vector<double> acc(static_cast<std::size_t>(n_rows * ldw), 0.0);
  if (n_rows == 0 || ldw == 0) return acc;
  DeviceBuffer<double> w_device(w_padded.size(), stream);
  DeviceBuffer<double> acc_device(acc.size(), stream);
  ISOGAN_CUDA_CHECK(cudaMemcpyAsync(w_device.data(), w_padded.data(), w_padded.size() * sizeof(double),
                                    cudaMemcpyHostToDevice, stream));
  const dim3 grid(ceil_div(static_cast<std::size_t>(n_rows), kTileRows),
                  static_cast<unsigned int>(ldw / kTileCols));
  squared_matmul_kernel<T><<<grid, kThreads, 0, stream>>>(dist, n_rows, n_cols, w_device.data(), ldw,
                                                          acc_device.data());
  ISOGAN_CUDA_CHECK(cudaGetLastError());
  ISOGAN_CUDA_CHECK(cudaMemcpyAsync(acc.data(), acc_device.data(), acc.size() * sizeof(double),
                                    cudaMemcpyDeviceToHost, stream));
  ISOGAN_CUDA_CHECK(cudaStreamSynchronize(stream));
  return acc;
}

}  // namespace

template <typename T>
void squared_matmul_cuda(const T* dist, index_t n_rows, index_t n_cols, const double* w, index_t n_vectors,
                         double* y, void* stream) {
  const DeviceGuard guard(device_of(dist));
  const index_t ldw = mds_detail::round_up(std::max<index_t>(n_vectors, 1), kTileCols);
  const std::vector<double> w_padded = mds_detail::padded_block(w, n_cols, n_vectors, ldw, false);
  const std::vector<double> acc =
      squared_product_cuda(dist, n_rows, n_cols, w_padded, ldw, static_cast<cudaStream_t>(stream));
  mds_detail::finish_block(acc.data(), n_rows, ldw, n_vectors, false, y);
}

template <typename T>
void centered_kernel_matmul_cuda(const T* dist, index_t n, const double* v, index_t n_vectors, double* y,
                                 void* stream) {
  const DeviceGuard guard(device_of(dist));
  const index_t ldw = mds_detail::round_up(std::max<index_t>(n_vectors, 1), kTileCols);
  const std::vector<double> w_padded = mds_detail::padded_block(v, n, n_vectors, ldw, true);
  const std::vector<double> acc = squared_product_cuda(dist, n, n, w_padded, ldw, static_cast<cudaStream_t>(stream));
  mds_detail::finish_block(acc.data(), n, ldw, n_vectors, true, y);
}

template <typename T>
void squared_row_means_cuda(const T* dist, index_t n_rows, index_t n_cols, double* row_means, void* stream) {
  if (n_rows == 0) return;
  const DeviceGuard guard(device_of(dist));
  const cudaStream_t cuda_stream = static_cast<cudaStream_t>(stream);
  DeviceBuffer<double> means_device(static_cast<std::size_t>(n_rows), cuda_stream);
  constexpr int kWarpsPerBlock = 8;
  squared_row_means_kernel<T><<<ceil_div(static_cast<std::size_t>(n_rows), kWarpsPerBlock), kWarpsPerBlock * 32, 0,
                                cuda_stream>>>(dist, n_rows, n_cols, means_device.data());
  ISOGAN_CUDA_CHECK(cudaGetLastError());
  ISOGAN_CUDA_CHECK(cudaMemcpyAsync(row_means, means_device.data(), static_cast<std::size_t>(n_rows) * sizeof(double),
                                    cudaMemcpyDeviceToHost, cuda_stream));
  ISOGAN_CUDA_CHECK(cudaStreamSynchronize(cuda_stream));
}

template <typename T>
SymmetryReport symmetry_report_cuda(const T* dist, index_t n, void* stream) {
  SymmetryReport report;
  if (n == 0) return report;
  const DeviceGuard guard(device_of(dist));
  const cudaStream_t cuda_stream = static_cast<cudaStream_t>(stream);
  DeviceBuffer<unsigned long long> report_device(2, cuda_stream);
  ISOGAN_CUDA_CHECK(cudaMemsetAsync(report_device.data(), 0, 2 * sizeof(unsigned long long), cuda_stream));
  const unsigned int n_tiles = ceil_div(static_cast<std::size_t>(n), kSymTile);
  symmetry_kernel<T><<<dim3(n_tiles, n_tiles), dim3(kSymTile, kSymRows), 0, cuda_stream>>>(dist, n,
                                                                                         report_device.data());
  ISOGAN_CUDA_CHECK(cudaGetLastError());
  unsigned long long bits[2] = {0, 0};
  ISOGAN_CUDA_CHECK(
      cudaMemcpyAsync(bits, report_device.data(), sizeof(bits), cudaMemcpyDeviceToHost, cuda_stream));
  ISOGAN_CUDA_CHECK(cudaStreamSynchronize(cuda_stream));
  static_assert(sizeof(double) == sizeof(unsigned long long), "double must be 64-bit");
  std::memcpy(&report.max_asymmetry, &bits[0], sizeof(double));
  std::memcpy(&report.max_abs, &bits[1], sizeof(double));
  return report;
}

DeviceMatrixCopy::DeviceMatrixCopy(const void* host, std::size_t n_bytes) {
  if (n_bytes == 0) return;
  ISOGAN_CUDA_CHECK(cudaMalloc(&data_, n_bytes));
  const cudaError_t copied = cudaMemcpy(data_, host, n_bytes, cudaMemcpyHostToDevice);
  if (copied != cudaSuccess) {
    cudaFree(data_);
    data_ = nullptr;
    ISOGAN_CUDA_CHECK(copied);
  }
}

DeviceMatrixCopy::~DeviceMatrixCopy() {
  if (data_ && cudaFree(data_) != cudaSuccess) cudaGetLastError();
}

#define ISOGAN_INSTANTIATE_MDS_CUDA(T)                                                                        \
  template void squared_matmul_cuda<T>(const T*, index_t, index_t, const double*, index_t, double*, void*);   \
  template void centered_kernel_matmul_cuda<T>(const T*, index_t, const double*, index_t, double*, void*);    \
  template void squared_row_means_cuda<T>(const T*, index_t, index_t, double*, void*);                       \
  template SymmetryReport symmetry_report_cuda<T>(const T*, index_t, void*);

ISOGAN_INSTANTIATE_MDS_CUDA(float)
ISOGAN_INSTANTIATE_MDS_CUDA(double)

}  // namespace isogan
