#include "mds/mds.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace isogan {
namespace {

// Blocking of Y = (D o D) W. An OpenMP task owns kRowBlock rows of D; for each tile of kColTile
// columns it squares kRowGroup rows into an L1 scratch (double), then micro-kernels multiply that
// scratch with the tile's rows of W, chunks of kChunk vectors held in vector registers (8 x 1 or
// 4 x 2 chunks of accumulators). The W tile (kColTile x b doubles) stays in L1/L2 while the rows of
// the task stream through it, so D is read from memory exactly once per call, whatever b is.
constexpr index_t kChunk = 8;
constexpr int kRowGroup = 8;
constexpr index_t kRowBlock = 64;
constexpr index_t kColTile = 256;

// Eight doubles as one value: GCC lowers it to one zmm, two ymm or four xmm registers per ISA,
// so the micro-kernel is vectorised whatever the instruction set.
typedef double chunk_t __attribute__((vector_size(kChunk * sizeof(double))));

// acc (R, C * kChunk) += squares[r][j] * w[j, 0:C*kChunk] over j in [0, n_j).
// squares: (R, ld_squares) row-major double, the squared D entries of the tile;
// w: (n_j, ldw) row-major double, already offset to the tile row and chunk;
// acc: (R, ld_acc) row-major double, already offset to the chunk.
template <int R, int C>
inline __attribute__((always_inline)) void squared_micro_kernel(const double* squares, index_t ld_squares,
                                                                index_t n_j, const double* w, index_t ldw,
                                                                double* acc, index_t ld_acc) {
  chunk_t sum[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) sum[r][c] = chunk_t{};
  }
  for (index_t j = 0; j < n_j; ++j) {
    chunk_t w_row[C];
    for (int c = 0; c < C; ++c) std::memcpy(&w_row[c], w + j * ldw + c * kChunk, sizeof(chunk_t));
    for (int r = 0; r < R; ++r) {
      const double square = squares[r * ld_squares + j];
      for (int c = 0; c < C; ++c) sum[r][c] += square * w_row[c];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      chunk_t total;
      std::memcpy(&total, acc + r * ld_acc + c * kChunk, sizeof(chunk_t));
      total += sum[r][c];
      std::memcpy(acc + r * ld_acc + c * kChunk, &total, sizeof(chunk_t));
    }
  }
}

// acc (R, ldw) += squares (R, n_j) @ w (n_j, ldw): pairs of chunks four rows at a time (8 vector
// accumulators, 6 loads per 8 FMAs), a last single chunk all R rows at a time (R accumulators).
template <int R>
inline __attribute__((always_inline)) void squared_tile(const double* squares, index_t n_j, const double* w,
                                                        index_t ldw, double* acc) {
  index_t c = 0;
  for (; c + 2 * kChunk <= ldw; c += 2 * kChunk) {
    constexpr int kHead = R < 4 ? R : 4;
    squared_micro_kernel<kHead, 2>(squares, kColTile, n_j, w + c, ldw, acc + c, ldw);
    if constexpr (R > 4) {
      squared_micro_kernel<R - 4, 2>(squares + 4 * kColTile, kColTile, n_j, w + c, ldw, acc + 4 * ldw + c, ldw);
    }
  }
  if (c < ldw) squared_micro_kernel<R, 1>(squares, kColTile, n_j, w + c, ldw, acc + c, ldw);
}

// acc (row1 - row0, ldw) += (D[row0:row1] o D[row0:row1]) W for one block of rows. Each row group's
// tile of D is converted and squared once into `squares` (kRowGroup x kColTile doubles, L1-resident),
// then reused by every chunk of W.
// dist: (n_rows, n_cols) row-major; w: (n_cols, ldw) row-major double, ldw a multiple of kChunk.
template <typename T>
inline __attribute__((always_inline)) void squared_row_block_body(const T* dist, index_t n_cols, index_t row0,
                                                                  index_t row1, const double* w, index_t ldw,
                                                                  double* acc) {
  alignas(64) double squares[kRowGroup * kColTile];
  for (index_t j0 = 0; j0 < n_cols; j0 += kColTile) {
    const index_t n_j = std::min(n_cols, j0 + kColTile) - j0;
    for (index_t row = row0; row < row1; row += kRowGroup) {
      const int rows = static_cast<int>(std::min<index_t>(kRowGroup, row1 - row));
      for (int r = 0; r < rows; ++r) {
        const T* source = dist + (row + r) * n_cols + j0;
        double* target = squares + r * kColTile;
        for (index_t j = 0; j < n_j; ++j) {
          const double d = static_cast<double>(source[j]);
          target[j] = d * d;
        }
      }
      double* acc_rows = acc + (row - row0) * ldw;
      const double* w_tile = w + j0 * ldw;
      switch (rows) {
        case 8: squared_tile<8>(squares, n_j, w_tile, ldw, acc_rows); break;
        case 7: squared_tile<7>(squares, n_j, w_tile, ldw, acc_rows); break;
        case 6: squared_tile<6>(squares, n_j, w_tile, ldw, acc_rows); break;
        case 5: squared_tile<5>(squares, n_j, w_tile, ldw, acc_rows); break;
        case 4: squared_tile<4>(squares, n_j, w_tile, ldw, acc_rows); break;
        case 3: squared_tile<3>(squares, n_j, w_tile, ldw, acc_rows); break;
        case 2: squared_tile<2>(squares, n_j, w_tile, ldw, acc_rows); break;
        default: squared_tile<1>(squares, n_j, w_tile, ldw, acc_rows); break;
      }
    }
  }
}

// One instance per instruction set, picked at run time: the wheel targets baseline x86-64, but the
// micro-kernel is FMA-bound and gains 2-4x from AVX2/AVX-512. (GCC's target_clones with arch= would
// test the CPU model, not its features, and pick the baseline on AMD parts.)
using RowBlockFn = void (*)(const void* dist, index_t n_cols, index_t row0, index_t row1, const double* w,
                            index_t ldw, double* acc);

template <typename T>
void squared_row_block_baseline(const void* dist, index_t n_cols, index_t row0, index_t row1, const double* w,
                                index_t ldw, double* acc) {
  squared_row_block_body<T>(static_cast<const T*>(dist), n_cols, row0, row1, w, ldw, acc);
}

#if defined(__x86_64__) && defined(__GNUC__)
template <typename T>
__attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))) void squared_row_block_avx512(
    const void* dist, index_t n_cols, index_t row0, index_t row1, const double* w, index_t ldw, double* acc) {
  squared_row_block_body<T>(static_cast<const T*>(dist), n_cols, row0, row1, w, ldw, acc);
}

template <typename T>
__attribute__((target("avx2,fma"))) void squared_row_block_avx2(const void* dist, index_t n_cols, index_t row0,
                                                                index_t row1, const double* w, index_t ldw,
                                                                double* acc) {
  squared_row_block_body<T>(static_cast<const T*>(dist), n_cols, row0, row1, w, ldw, acc);
}

template <typename T>
RowBlockFn select_squared_row_block() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    return &squared_row_block_avx512<T>;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &squared_row_block_avx2<T>;
  return &squared_row_block_baseline<T>;
}
#else
template <typename T>
RowBlockFn select_squared_row_block() {
  return &squared_row_block_baseline<T>;
}
#endif

template <typename T>
void squared_row_block(const T* dist, index_t n_cols, index_t row0, index_t row1, const double* w, index_t ldw,
                       double* acc) {
  static const RowBlockFn selected = select_squared_row_block<T>();
  selected(dist, n_cols, row0, row1, w, ldw, acc);
}

// Threads worth starting for `elements` reads of D: below ~1M elements per thread the fork/join
// (milliseconds on a loaded machine) costs more than the work.
int useful_threads(int n_threads, index_t elements) {
  constexpr index_t kElementsPerThread = index_t{1} << 20;
  return static_cast<int>(std::max<index_t>(1, std::min<index_t>(n_threads, elements / kElementsPerThread)));
}

// acc (n_rows, ldw) = (D o D) w_padded, OpenMP over blocks of rows. Throws Cancelled after the region.
template <typename T>
std::vector<double> squared_product(const T* dist, index_t n_rows, index_t n_cols, const double* w_padded,
                                    index_t ldw, int n_threads, Cancellation& cancel) {
  std::vector<double> acc(static_cast<std::size_t>(n_rows * ldw), 0.0);
  const index_t n_blocks = (n_rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(dynamic, 1) num_threads(useful_threads(n_threads, n_rows * n_cols))
  for (index_t block = 0; block < n_blocks; ++block) {
    if (cancel.stop_requested(omp_get_thread_num() == 0)) continue;
    const index_t row0 = block * kRowBlock;
    const index_t row1 = std::min(n_rows, row0 + kRowBlock);
    squared_row_block(dist, n_cols, row0, row1, w_padded, ldw, acc.data() + row0 * ldw);
  }
  if (cancel.cancelled()) throw Cancelled();
  return acc;
}

}  // namespace

template <typename T>
void squared_matmul_cpu(const T* dist, index_t n_rows, index_t n_cols, const double* w, index_t n_vectors,
                        double* y, int n_threads, Cancellation& cancel) {
  const index_t ldw = mds_detail::round_up(std::max<index_t>(n_vectors, 1), kChunk);
  const std::vector<double> w_padded = mds_detail::padded_block(w, n_cols, n_vectors, ldw, false);
  const std::vector<double> acc = squared_product(dist, n_rows, n_cols, w_padded.data(), ldw, n_threads, cancel);
  mds_detail::finish_block(acc.data(), n_rows, ldw, n_vectors, false, y);
}

template <typename T>
void centered_kernel_matmul_cpu(const T* dist, index_t n, const double* v, index_t n_vectors, double* y,
                                int n_threads, Cancellation& cancel) {
  const index_t ldw = mds_detail::round_up(std::max<index_t>(n_vectors, 1), kChunk);
  const std::vector<double> w_padded = mds_detail::padded_block(v, n, n_vectors, ldw, true);
  const std::vector<double> acc = squared_product(dist, n, n, w_padded.data(), ldw, n_threads, cancel);
  mds_detail::finish_block(acc.data(), n, ldw, n_vectors, true, y);
}

template <typename T>
void squared_row_means_cpu(const T* dist, index_t n_rows, index_t n_cols, double* row_means, int n_threads,
                           Cancellation& cancel) {
#pragma omp parallel for schedule(static) num_threads(useful_threads(n_threads, n_rows * n_cols))
  for (index_t i = 0; i < n_rows; ++i) {
    if (cancel.stop_requested(omp_get_thread_num() == 0)) continue;
    const T* row = dist + i * n_cols;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (index_t j = 0; j < n_cols; ++j) {
      const double d = static_cast<double>(row[j]);
      sum += d * d;
    }
    row_means[i] = n_cols > 0 ? -0.5 * sum / static_cast<double>(n_cols) : 0.0;
  }
  if (cancel.cancelled()) throw Cancelled();
}

template <typename T>
void centered_kernel_cpu(const T* dist, index_t n, T* kernel, int n_threads, Cancellation& cancel) {
  std::vector<double> row_means(static_cast<std::size_t>(n));
  squared_row_means_cpu(dist, n, n, row_means.data(), n_threads, cancel);
  double total = 0.0;
  for (double mean : row_means) total += mean;
  const double overall_mean = n > 0 ? total / static_cast<double>(n) : 0.0;
#pragma omp parallel for schedule(static) num_threads(useful_threads(n_threads, n * n))
  for (index_t i = 0; i < n; ++i) {
    if (cancel.stop_requested(omp_get_thread_num() == 0)) continue;
    const T* row = dist + i * n;
    T* out = kernel + i * n;
    const double row_shift = overall_mean - row_means[i];
#pragma omp simd
    for (index_t j = 0; j < n; ++j) {
      const double d = static_cast<double>(row[j]);
      out[j] = static_cast<T>(-0.5 * d * d - row_means[j] + row_shift);
    }
  }
  if (cancel.cancelled()) throw Cancelled();
}

template <typename T>
SymmetryReport symmetry_report_cpu(const T* dist, index_t n, int n_threads, Cancellation& cancel) {
  constexpr index_t kTile = 64;
  const index_t n_tiles = (n + kTile - 1) / kTile;
  double max_asymmetry = 0.0;
  double max_abs = 0.0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(useful_threads(n_threads, n * n)) \
    reduction(max : max_asymmetry, max_abs)
  for (index_t tile_i = 0; tile_i < n_tiles; ++tile_i) {
    if (cancel.stop_requested(omp_get_thread_num() == 0)) continue;
    const index_t i0 = tile_i * kTile, i1 = std::min(n, i0 + kTile);
    for (index_t tile_j = tile_i; tile_j < n_tiles; ++tile_j) {
      const index_t j0 = tile_j * kTile, j1 = std::min(n, j0 + kTile);
      for (index_t i = i0; i < i1; ++i) {
        for (index_t j = std::max(j0, i); j < j1; ++j) {
          const double upper = static_cast<double>(dist[i * n + j]);
          const double lower = static_cast<double>(dist[j * n + i]);
          max_asymmetry = std::max(max_asymmetry, std::abs(upper - lower));
          max_abs = std::max(max_abs, std::max(std::abs(upper), std::abs(lower)));
        }
      }
    }
  }
  if (cancel.cancelled()) throw Cancelled();
  return SymmetryReport{max_asymmetry, max_abs};
}

#define ISOGAN_INSTANTIATE_MDS(T)                                                                              \
  template void squared_matmul_cpu<T>(const T*, index_t, index_t, const double*, index_t, double*, int,      \
                                      Cancellation&);                                                        \
  template void centered_kernel_matmul_cpu<T>(const T*, index_t, const double*, index_t, double*, int,       \
                                              Cancellation&);                                                \
  template void squared_row_means_cpu<T>(const T*, index_t, index_t, double*, int, Cancellation&);           \
  template void centered_kernel_cpu<T>(const T*, index_t, T*, int, Cancellation&);                          \
  template SymmetryReport symmetry_report_cpu<T>(const T*, index_t, int, Cancellation&);

ISOGAN_INSTANTIATE_MDS(float)
ISOGAN_INSTANTIATE_MDS(double)

}  // namespace isogan
