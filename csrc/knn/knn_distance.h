// Exact reduced Minkowski distances shared by the brute-force and kd-tree searches (internal).
//
// Both searches must produce the same distance values bit for bit, so both compute them here: the
// reduced distance is accumulated in float64, feature by feature in order, never with a fused
// multiply-add, and mapped to the distance by rdist_to_dist before rounding to the input type.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "knn/knn.h"

#if defined(__GNUC__) && !defined(__clang__)
// Exact distances must round like scikit-learn's (a product, then a sum), never as one fused op.
#define ISOGAN_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off"), noinline))
#else
#define ISOGAN_NO_FP_CONTRACT __attribute__((noinline))
#endif

#if defined(__GNUC__)
#define ISOGAN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ISOGAN_ALWAYS_INLINE inline
#endif

namespace isogan::knn::detail {

// A neighbour candidate ordered by (reduced distance, index): the order of every result.
struct Entry {
  double key;
  index_t index;
};
struct Before {
  bool operator()(const Entry& a, const Entry& b) const {
    return a.key < b.key || (a.key == b.key && a.index < b.index);
  }
};
inline constexpr Before before{};

// One feature's contribution to a reduced distance: `accumulator` combined with the coordinates
// `a` and `b` (already float64). Callers compile it with floating-point contraction off.
template <Metric M>
ISOGAN_ALWAYS_INLINE void accumulate_rdist(double& accumulator, double a, double b, double p) {
  if constexpr (M == Metric::Euclidean) {
    const double diff = a - b;
    const double square = diff * diff;
    accumulator += square;
  } else {
    const double diff = std::fabs(a - b);
    if constexpr (M == Metric::Manhattan) {
      accumulator += diff;
    } else if constexpr (M == Metric::Chebyshev) {
      accumulator = std::max(accumulator, diff);
    } else {
      accumulator += std::pow(diff, p);
    }
  }
}

// Exact reduced Euclidean distance (sum of squared differences).
// a, b: (D,) coordinates
template <typename T>
ISOGAN_NO_FP_CONTRACT double euclidean_exact(const T* a, const T* b, index_t n_features) {
  double sum = 0.0;
  for (index_t d = 0; d < n_features; ++d) {
    accumulate_rdist<Metric::Euclidean>(sum, static_cast<double>(a[d]), static_cast<double>(b[d]), 2.0);
  }
  return sum;
}

template <typename T, Metric M>
ISOGAN_ALWAYS_INLINE void exact_rdists_body(const T* query, const T* rows, index_t n_rows, index_t n_features,
                                            double p, double* out) {
  for (index_t r = 0; r < n_rows; ++r) {
    const T* row = rows + r * n_features;
    double accumulator = 0.0;
    for (index_t d = 0; d < n_features; ++d) {
      accumulate_rdist<M>(accumulator, static_cast<double>(query[d]), static_cast<double>(row[d]), p);
    }
    out[r] = accumulator;
  }
}

// Exact reduced distances of one query to consecutive rows (one call per block keeps the
// non-inlined, contraction-free arithmetic off the per-candidate path).
// query: (D,); rows: (n_rows, D) row-major; out: (n_rows,) float64
template <typename T>
ISOGAN_NO_FP_CONTRACT void exact_rdists(Metric metric, const T* query, const T* rows, index_t n_rows,
                                        index_t n_features, double p, double* out) {
  switch (metric) {
    case Metric::Euclidean:
      return exact_rdists_body<T, Metric::Euclidean>(query, rows, n_rows, n_features, p, out);
    case Metric::Manhattan:
      return exact_rdists_body<T, Metric::Manhattan>(query, rows, n_rows, n_features, p, out);
    case Metric::Chebyshev:
      return exact_rdists_body<T, Metric::Chebyshev>(query, rows, n_rows, n_features, p, out);
    default:
      return exact_rdists_body<T, Metric::Minkowski>(query, rows, n_rows, n_features, p, out);
  }
}

inline double rdist_to_dist(double rdist, Metric metric, double p) {
  switch (metric) {
    case Metric::Euclidean:
      return std::sqrt(rdist);
    case Metric::Minkowski:
      return std::pow(rdist, 1.0 / p);
    default:
      return rdist;
  }
}

inline double dist_to_rdist(double dist, Metric metric, double p) {
  switch (metric) {
    case Metric::Euclidean:
      return dist * dist;
    case Metric::Minkowski:
      return std::pow(dist, p);
    default:
      return dist;
  }
}

// Keeps the k smallest entries of one query in a max-heap ordered by `before`.
struct TopK {
  Entry* heap;
  index_t size;
  index_t capacity;
  double threshold() const { return size < capacity ? std::numeric_limits<double>::infinity() : heap[0].key; }
  void offer(const Entry& entry) {
    if (size < capacity) {
      heap[size++] = entry;
      std::push_heap(heap, heap + size, before);
    } else if (before(entry, heap[0])) {
      std::pop_heap(heap, heap + size, before);
      heap[size - 1] = entry;
      std::push_heap(heap, heap + size, before);
    }
  }
};

template <typename T>
void write_sorted(TopK& top, const SearchParams& params, T* distances, index_t* indices) {
  std::sort_heap(top.heap, top.heap + top.size, before);
  for (index_t r = 0; r < top.size; ++r) {
    distances[r] = static_cast<T>(rdist_to_dist(top.heap[r].key, params.metric, params.p));
    indices[r] = top.heap[r].index;
  }
}

}  // namespace isogan::knn::detail
