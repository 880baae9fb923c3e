// Exact k-nearest-neighbour and radius-neighbour search by blocked brute force.
//
// Distances equal scikit-learn's exact ones: the reduced distance (sum of squared differences for
// p=2, of |differences| for p=1, their max for p=inf, of |differences|^p otherwise) is accumulated
// in float64, feature by feature in order, without fused multiply-adds, then mapped to the distance
// (sqrt, identity or ^(1/p)) and rounded to the input type. Neighbours are ordered by
// (distance, index): among equal distances the smaller index comes first and wins a place at the
// k-th position.
#pragma once

#include <cstdint>
#include <vector>

#include "common/common.h"

namespace isogan::knn {

// Distance functions implemented natively; everything else is served by scikit-learn in Python.
enum class Metric : int {
  Euclidean = 0,    // minkowski p=2
  Manhattan = 1,    // minkowski p=1
  Chebyshev = 2,    // minkowski p=inf
  Minkowski = 3,    // general p >= 1
  Precomputed = 4,  // queries hold a (M, N) distance matrix, points are unused
};

struct SearchParams {
  index_t n_queries = 0;   // M
  index_t n_points = 0;    // N, the fit set
  index_t n_features = 0;  // D (N for Precomputed)
  Metric metric = Metric::Euclidean;
  double p = 2.0;             // Minkowski exponent (used by Metric::Minkowski)
  bool exclude_self = false;  // query i is point i: never report j == i
  int n_jobs = 0;             // joblib convention, see resolve_threads
};

// The radius mode's result: a CSR (M, N) matrix, columns of each row in increasing index order.
template <typename T>
struct RadiusResult {
  std::vector<index_t> indptr;   // (M + 1,)
  std::vector<index_t> indices;  // (nnz,)
  std::vector<T> distances;      // (nnz,)
};

// k nearest points of every query, sorted by (distance, index).
// queries:   (M, D) row-major (for Precomputed: (M, N) distances)
// points:    (N, D) row-major (unused for Precomputed; may be the same array as queries)
// distances: (M, k) row-major, output
// indices:   (M, k) row-major int64, output
// Requires 1 <= k <= N - exclude_self (checked by the caller). Throws Cancelled on Ctrl-C.
template <typename T>
void kneighbors_cpu(const T* queries, const T* points, const SearchParams& params, index_t n_neighbors,
                    T* distances, index_t* indices, Cancellation& cancel);

// All points within `radius` (inclusive: reduced distance <= reduced radius) of every query.
// queries: (M, D) row-major (for Precomputed: (M, N) distances); points: (N, D) row-major.
template <typename T>
RadiusResult<T> radius_neighbors_cpu(const T* queries, const T* points, const SearchParams& params, double radius,
                                     Cancellation& cancel);

// The k nearest of each query among its own candidate points, ranked exactly as kneighbors_cpu
// ranks (exact reduced distance, then index): the exact re-ranking of an approximate search's
// candidates. With exclude_self, candidate i of query i is skipped. Minkowski metrics only.
// queries:    (M, D) row-major
// points:     (N, D) row-major (may be the same array as queries)
// candidates: (M, w) row-major int64, indices in [0, N); a repeated index counts once
// distances:  (M, k) row-major, output; indices: (M, k) row-major int64, output
// Throws std::invalid_argument for a candidate out of range or a row left with fewer than k
// distinct candidates; Cancelled on Ctrl-C.
template <typename T>
void kneighbors_among_cpu(const T* queries, const T* points, const SearchParams& params, const index_t* candidates,
                          index_t n_candidates, index_t n_neighbors, T* distances, index_t* indices,
                          Cancellation& cancel);

// Exact searches through a kd-tree over the points (pays off for low-dimensional data: D up to
// ~15): the same results as kneighbors_cpu / radius_neighbors_cpu, bit for bit (same distances,
// (distance, index) order, ties to the smaller index). The tree is built per call: leaves of at
// most `leaf_size` points, median splits on the widest coordinate of each node's bounding box.
// Minkowski metrics only (not Precomputed). Throws Cancelled on Ctrl-C.
// queries: (M, D) row-major; points: (N, D) row-major (may be the same array as queries)
// distances: (M, k) row-major, output; indices: (M, k) row-major int64, output
// Requires 1 <= k <= N - exclude_self and leaf_size >= 1 (checked by the caller).
template <typename T>
void kneighbors_kdtree_cpu(const T* queries, const T* points, const SearchParams& params, index_t n_neighbors,
                           index_t leaf_size, T* distances, index_t* indices, Cancellation& cancel);

// Radius mode through the kd-tree, as radius_neighbors_cpu.
// queries: (M, D) row-major; points: (N, D) row-major
template <typename T>
RadiusResult<T> radius_neighbors_kdtree_cpu(const T* queries, const T* points, const SearchParams& params,
                                            double radius, index_t leaf_size, Cancellation& cancel);

// Peak bytes of a kd-tree over n_points x n_features values of `value_size` bytes: its
// permutation, tree-ordered copy of the points, node ranges and bounding boxes, plus the build's
// working copies (split keys, partitioned rows and permutation).
index_t kdtree_bytes(index_t n_points, index_t n_features, index_t value_size, index_t leaf_size);

#ifdef ISOGAN_WITH_CUDA
// Device twins. All pointers are device pointers; work is queued on `stream` (a cudaStream_t passed
// as an integer) and nothing synchronises except where a host-side count is returned.
// queries: (M, D) row-major; points: (N, D) row-major (unused for Precomputed)
// distances, indices: (M, k) row-major outputs
template <typename T>
void kneighbors_cuda(const T* queries, const T* points, const SearchParams& params, index_t n_neighbors,
                     T* distances, index_t* indices, std::uintptr_t stream);

// Radius mode, first pass: writes the CSR row offsets and returns nnz (synchronises `stream` once).
// indptr: (M + 1,) int64 output
template <typename T>
index_t radius_count_cuda(const T* queries, const T* points, const SearchParams& params, double radius,
                          index_t* indptr, std::uintptr_t stream);

// Radius mode, second pass: fills the columns (increasing within a row) and distances.
// indptr: (M + 1,) from radius_count_cuda; indices, distances: (nnz,) outputs
template <typename T>
void radius_fill_cuda(const T* queries, const T* points, const SearchParams& params, double radius,
                      const index_t* indptr, index_t* indices, T* distances, std::uintptr_t stream);

// Host arrays in and out, staged through device buffers on a private stream (synchronous).
// queries: (M, D) (Precomputed: (M, N)); points: (N, D); distances, indices: (M, k)
template <typename T>
void kneighbors_cuda_host(const T* queries, const T* points, const SearchParams& params, index_t n_neighbors,
                          T* distances, index_t* indices);
template <typename T>
RadiusResult<T> radius_neighbors_cuda_host(const T* queries, const T* points, const SearchParams& params,
                                           double radius);
#endif

}  // namespace isogan::knn
