// Classical MDS primitives: products with the doubly centred kernel K = -1/2 J (D o D) J
// (J = I - 11^T/N) applied implicitly, one pass over the distance matrix D per block of vectors.
// D is read in its own dtype (float or double) and squared on the fly; every sum is accumulated in
// double, so float32 input loses nothing beyond the rounding of D itself. The eigensolver that
// drives these products (block Lanczos, Rayleigh-Ritz) lives in python/isogan/mds.py.
#pragma once

#include <vector>

#include "common/common.h"

namespace isogan {

// Y = -1/2 (D o D) W: the uncentred product, also the out-of-sample kernel of Isomap.transform.
// dist: (n_rows, n_cols) row-major; w: (n_cols, n_vectors) row-major double;
// y: (n_rows, n_vectors) row-major double, overwritten.
template <typename T>
void squared_matmul_cpu(const T* dist, index_t n_rows, index_t n_cols, const double* w, index_t n_vectors,
                        double* y, int n_threads, Cancellation& cancel);

// Y = K V with K = -1/2 J (D o D) J, never forming K: Y = J (-1/2 (D o D) (J V)); J costs O(N b).
// dist: (n, n) row-major; v: (n, n_vectors) row-major double; y: (n, n_vectors) row-major double.
template <typename T>
void centered_kernel_matmul_cpu(const T* dist, index_t n, const double* v, index_t n_vectors, double* y,
                                int n_threads, Cancellation& cancel);

// Row means of -1/2 (D o D): KernelCenterer's fit statistics when D is symmetric (column means ==
// row means), and the per-query means of KernelCenterer.transform for a rectangular D.
// dist: (n_rows, n_cols) row-major; row_means: (n_rows,) double, overwritten.
template <typename T>
void squared_row_means_cpu(const T* dist, index_t n_rows, index_t n_cols, double* row_means, int n_threads,
                           Cancellation& cancel);

// The centred kernel K = -1/2 J (D o D) J written densely, for the 'dense' eigensolver only.
// dist: (n, n) row-major; kernel: (n, n) row-major, same dtype, overwritten (may not alias dist).
template <typename T>
void centered_kernel_cpu(const T* dist, index_t n, T* kernel, int n_threads, Cancellation& cancel);

// Largest |D_ij - D_ji| and largest |D_ij| over a square D, in one cache-blocked pass.
// dist: (n, n) row-major.
struct SymmetryReport {
  double max_asymmetry = 0.0;
  double max_abs = 0.0;
};
template <typename T>
SymmetryReport symmetry_report_cpu(const T* dist, index_t n, int n_threads, Cancellation& cancel);

// Host-side O(N b) steps shared by the CPU and CUDA products.
namespace mds_detail {

inline index_t round_up(index_t value, index_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// w (n, n_vectors) copied into a zero-padded (n, ldw) buffer, optionally minus its column means (J w).
inline std::vector<double> padded_block(const double* w, index_t n, index_t n_vectors, index_t ldw, bool center) {
  std::vector<double> means(static_cast<std::size_t>(n_vectors), 0.0);
  if (center && n > 0) {
    for (index_t i = 0; i < n; ++i) {
      for (index_t t = 0; t < n_vectors; ++t) means[t] += w[i * n_vectors + t];
    }
    for (double& mean : means) mean /= static_cast<double>(n);
  }
  std::vector<double> padded(static_cast<std::size_t>(n * ldw), 0.0);
  for (index_t i = 0; i < n; ++i) {
    for (index_t t = 0; t < n_vectors; ++t) padded[i * ldw + t] = w[i * n_vectors + t] - means[t];
  }
  return padded;
}

// y (n_rows, n_vectors) = -1/2 acc (n_rows, ldw), optionally minus its column means (J y).
inline void finish_block(const double* acc, index_t n_rows, index_t ldw, index_t n_vectors, bool center,
                         double* y) {
  std::vector<double> means(static_cast<std::size_t>(n_vectors), 0.0);
  if (center && n_rows > 0) {
    for (index_t i = 0; i < n_rows; ++i) {
      for (index_t t = 0; t < n_vectors; ++t) means[t] += acc[i * ldw + t];
    }
    for (double& mean : means) mean /= static_cast<double>(n_rows);
  }
  for (index_t i = 0; i < n_rows; ++i) {
    for (index_t t = 0; t < n_vectors; ++t) y[i * n_vectors + t] = -0.5 * (acc[i * ldw + t] - means[t]);
  }
}

}  // namespace mds_detail

#ifdef ISOGAN_WITH_CUDA
// CUDA twins. Device pointers, caller's stream; the small (n, b) vector blocks are host arrays staged
// through device buffers (the eigensolver's Rayleigh-Ritz runs on the host), D stays on the device.
// dist: device (n_rows, n_cols) row-major; w: host (n_cols, n_vectors) double; y: host (n_rows, n_vectors)
// double. Synchronises `stream` before returning (y is read by the host).
template <typename T>
void squared_matmul_cuda(const T* dist, index_t n_rows, index_t n_cols, const double* w, index_t n_vectors,
                         double* y, void* stream);

// dist: device (n, n) row-major; v, y: host (n, n_vectors) double.
template <typename T>
void centered_kernel_matmul_cuda(const T* dist, index_t n, const double* v, index_t n_vectors, double* y,
                                 void* stream);

// dist: device (n_rows, n_cols) row-major; row_means: host (n_rows,) double.
template <typename T>
void squared_row_means_cuda(const T* dist, index_t n_rows, index_t n_cols, double* row_means, void* stream);

// dist: device (n, n) row-major.
template <typename T>
SymmetryReport symmetry_report_cuda(const T* dist, index_t n, void* stream);
#endif

}  // namespace isogan
