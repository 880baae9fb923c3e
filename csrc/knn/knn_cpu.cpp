// CPU kNN / radius search: OpenMP over tiles of queries, candidates streamed in packed tiles.
//
// Euclidean: a tile of approximate squared distances ||q||^2 + ||c||^2 - 2 q.c on mean-centred
// copies (vectorised, AVX2/FMA when the CPU has it) shortlists candidates; any candidate whose
// approximation minus a rigorous rounding-error bound does not exceed the current k-th exact
// distance is recomputed exactly, so the result is the exact (distance, index) order.
// Other Minkowski metrics have no such shortcut and are computed exactly tile by tile.
#include "knn/knn.h"
#include "knn/knn_distance.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <utility>
#include <stdexcept>
#include <vector>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define ISOGAN_X86_DISPATCH 1
#endif

namespace isogan::knn {
namespace {

constexpr index_t kQueryTile = 32;   // queries per OpenMP work item
constexpr index_t kPointTile = 128;  // candidates per packed tile
constexpr index_t kGroup = 4;        // queries sharing one pass over a packed tile

using detail::accumulate_rdist;
using detail::before;
using detail::dist_to_rdist;
using detail::Entry;
using detail::euclidean_exact;
using detail::rdist_to_dist;
using detail::TopK;
using detail::write_sorted;

// ---------------------------------------------------------------- tile kernels
// Approximate squared distances of up to kQueryTile centred queries to one packed tile.
// queries: (n_rows, D) row-major centred; query_norms: (n_rows,) squared norms
// packed: (D, kPointTile) feature-major centred candidates; point_norms: (kPointTile,) squared norms
// out: (kQueryTile, kPointTile) row-major
// 4 doubles or 8 floats (GCC/Clang vector extension; split in two on SSE-only CPUs).
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(32)));
};
template <typename T>
using Vec = typename VecOf<T>::type;

// 2 doubles or 4 floats: native width on every x86-64 and ARM64 CPU, for code outside the AVX2 clones.
template <typename T>
struct NarrowVecOf;
template <>
struct NarrowVecOf<float> {
  typedef float type __attribute__((vector_size(16)));
};
template <>
struct NarrowVecOf<double> {
  typedef double type __attribute__((vector_size(16)));
};
template <typename T>
using NarrowVec = typename NarrowVecOf<T>::type;

template <typename T>
ISOGAN_ALWAYS_INLINE void load_vec(Vec<T>& v, const T* from) {
  std::memcpy(&v, from, sizeof(v));
}
template <typename T>
ISOGAN_ALWAYS_INLINE void store_vec(T* to, const Vec<T>& v) {
  std::memcpy(to, &v, sizeof(v));
}

template <typename T>
ISOGAN_ALWAYS_INLINE void euclidean_tile_body(const T* queries, const T* query_norms, index_t n_rows, const T* packed,
                                              const T* point_norms, index_t n_features, T* __restrict out) {
  constexpr index_t lanes = sizeof(Vec<T>) / sizeof(T);
  constexpr index_t width = 2 * lanes;
  for (index_t i0 = 0; i0 < n_rows; i0 += kGroup) {
    const T* rows[kGroup];
    for (index_t i = 0; i < kGroup; ++i) rows[i] = queries + std::min(i0 + i, n_rows - 1) * n_features;
    for (index_t c0 = 0; c0 < kPointTile; c0 += width) {
      Vec<T> dots[kGroup][2] = {};
      for (index_t d = 0; d < n_features; ++d) {
        const T* candidate = packed + d * kPointTile + c0;
        Vec<T> low, high;
        load_vec(low, candidate);
        load_vec(high, candidate + lanes);
        for (index_t i = 0; i < kGroup; ++i) {
          const T q = rows[i][d];
          dots[i][0] += q * low;
          dots[i][1] += q * high;
        }
      }
      Vec<T> norms_low, norms_high;
      load_vec(norms_low, point_norms + c0);
      load_vec(norms_high, point_norms + c0 + lanes);
      for (index_t i = 0; i < kGroup && i0 + i < n_rows; ++i) {
        T* row = out + (i0 + i) * kPointTile + c0;
        const T query_norm = query_norms[i0 + i];
        store_vec(row, query_norm + norms_low - T(2) * dots[i][0]);
        store_vec(row + lanes, query_norm + norms_high - T(2) * dots[i][1]);
      }
    }
  }
}

// Exact reduced Manhattan / Chebyshev / Minkowski distances of up to kQueryTile queries to a tile.
// queries: (n_rows, D) row-major; packed: (D, kPointTile) feature-major; out: (kQueryTile, kPointTile)
template <typename T, Metric M>
ISOGAN_ALWAYS_INLINE void minkowski_tile_body(const T* queries, index_t n_rows, const T* packed, index_t n_features,
                                              double p, double* out) {
  constexpr index_t width = 8;
  for (index_t i0 = 0; i0 < n_rows; i0 += kGroup) {
    const T* rows[kGroup];
    for (index_t i = 0; i < kGroup; ++i) rows[i] = queries + std::min(i0 + i, n_rows - 1) * n_features;
    for (index_t c0 = 0; c0 < kPointTile; c0 += width) {
      double acc[kGroup][width] = {};
      for (index_t d = 0; d < n_features; ++d) {
        const T* candidate = packed + d * kPointTile + c0;
        for (index_t i = 0; i < kGroup; ++i) {
          const double q = static_cast<double>(rows[i][d]);
          for (index_t c = 0; c < width; ++c) {
            accumulate_rdist<M>(acc[i][c], q, static_cast<double>(candidate[c]), p);
          }
        }
      }
      for (index_t i = 0; i < kGroup && i0 + i < n_rows; ++i) {
        for (index_t c = 0; c < width; ++c) out[(i0 + i) * kPointTile + c0 + c] = acc[i][c];
      }
    }
  }
}

template <typename T>
void euclidean_tile_generic(const T* queries, const T* query_norms, index_t n_rows, const T* packed,
                            const T* point_norms, index_t n_features, T* out) {
  euclidean_tile_body(queries, query_norms, n_rows, packed, point_norms, n_features, out);
}
template <typename T, Metric M>
void minkowski_tile_generic(const T* queries, index_t n_rows, const T* packed, index_t n_features, double p,
                            double* out) {
  minkowski_tile_body<T, M>(queries, n_rows, packed, n_features, p, out);
}

#ifdef ISOGAN_X86_DISPATCH
template <typename T>
__attribute__((target("avx2,fma"))) void euclidean_tile_avx2(const T* queries, const T* query_norms, index_t n_rows,
                                                              const T* packed, const T* point_norms,
                                                              index_t n_features, T* out) {
  euclidean_tile_body(queries, query_norms, n_rows, packed, point_norms, n_features, out);
}
// No multiplication happens in the Manhattan/Chebyshev bodies, so AVX2 cannot change their rounding.
template <typename T, Metric M>
__attribute__((target("avx2"))) void minkowski_tile_avx2(const T* queries, index_t n_rows, const T* packed,
                                                         index_t n_features, double p, double* out) {
  minkowski_tile_body<T, M>(queries, n_rows, packed, n_features, p, out);
}
inline bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

template <typename T>
void euclidean_tile(const T* queries, const T* query_norms, index_t n_rows, const T* packed, const T* point_norms,
                    index_t n_features, T* out) {
#ifdef ISOGAN_X86_DISPATCH
  if (cpu_has_avx2_fma()) return euclidean_tile_avx2(queries, query_norms, n_rows, packed, point_norms, n_features, out);
#endif
  euclidean_tile_generic(queries, query_norms, n_rows, packed, point_norms, n_features, out);
}

template <typename T>
void exact_tile(Metric metric, const T* queries, index_t n_rows, const T* packed, index_t n_features, double p,
                double* out) {
  switch (metric) {
    case Metric::Manhattan:
#ifdef ISOGAN_X86_DISPATCH
      if (cpu_has_avx2_fma()) return minkowski_tile_avx2<T, Metric::Manhattan>(queries, n_rows, packed, n_features, p, out);
#endif
      return minkowski_tile_generic<T, Metric::Manhattan>(queries, n_rows, packed, n_features, p, out);
    case Metric::Chebyshev:
#ifdef ISOGAN_X86_DISPATCH
      if (cpu_has_avx2_fma()) return minkowski_tile_avx2<T, Metric::Chebyshev>(queries, n_rows, packed, n_features, p, out);
#endif
      return minkowski_tile_generic<T, Metric::Chebyshev>(queries, n_rows, packed, n_features, p, out);
    default:
      return minkowski_tile_generic<T, Metric::Minkowski>(queries, n_rows, packed, n_features, p, out);
  }
}

// Threads worth waking: each gets at least ~2M feature-pair operations, so small searches run on
// one thread instead of paying for barriers (which on a loaded machine cost a scheduler slice).
SearchParams with_thread_count(const SearchParams& params) {
  constexpr double kWorkPerThread = 2.0e6;
  const double work = static_cast<double>(params.n_queries) * static_cast<double>(params.n_points) *
                      static_cast<double>(params.metric == Metric::Precomputed ? 1 : params.n_features);
  const int useful = static_cast<int>(std::min(1.0e6, std::max(1.0, work / kWorkPerThread)));
  SearchParams effective = params;
  effective.n_jobs = std::min(resolve_threads(params.n_jobs), useful);
  return effective;
}

// ---------------------------------------------------------------- shared preparation
// Low-dimensional data are reordered so that consecutive points are spatially close (recursive
// splits at the widest coordinate, on tile boundaries): tiles then have small bounding boxes, and
// a candidate tile whose box is farther than every query's current k-th distance is skipped.
constexpr index_t kMaxOrderedFeatures = 16;

template <typename T>
std::vector<index_t> spatial_order(const T* data, index_t n, index_t dims, index_t leaf) {
  std::vector<index_t> order(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) order[i] = i;
  if (dims > kMaxOrderedFeatures) return order;
  struct Range {
    index_t begin, end;
  };
  std::vector<Range> pending{{0, n}};
  while (!pending.empty()) {
    const Range range = pending.back();
    pending.pop_back();
    if (range.end - range.begin <= leaf) continue;
    index_t widest = 0;
    double widest_spread = -1.0;
    for (index_t d = 0; d < dims; ++d) {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (index_t i = range.begin; i < range.end; ++i) {
        const double value = static_cast<double>(data[order[i] * dims + d]);
        lo = std::min(lo, value);
        hi = std::max(hi, value);
      }
      if (hi - lo > widest_spread) {
        widest_spread = hi - lo;
        widest = d;
      }
    }
    const index_t n_leaves = (range.end - range.begin + leaf - 1) / leaf;
    const index_t middle = range.begin + leaf * ((n_leaves + 1) / 2);
    std::nth_element(order.begin() + range.begin, order.begin() + middle, order.begin() + range.end,
                     [&](index_t x, index_t y) { return data[x * dims + widest] < data[y * dims + widest]; });
    pending.push_back({range.begin, middle});
    pending.push_back({middle, range.end});
  }
  return order;
}

// Per-tile bounding boxes of rows order[tile * size, (tile + 1) * size).
// lo, hi: (n_tiles, D) float64
template <typename T>
void tile_boxes(const T* data, const std::vector<index_t>& order, index_t dims, index_t size, std::vector<double>& lo,
                std::vector<double>& hi) {
  const index_t n = static_cast<index_t>(order.size());
  const index_t n_tiles = (n + size - 1) / size;
  lo.assign(static_cast<std::size_t>(n_tiles * dims), std::numeric_limits<double>::infinity());
  hi.assign(static_cast<std::size_t>(n_tiles * dims), -std::numeric_limits<double>::infinity());
  for (index_t r = 0; r < n; ++r) {
    const index_t tile = r / size;
    for (index_t d = 0; d < dims; ++d) {
      const double value = static_cast<double>(data[order[r] * dims + d]);
      lo[tile * dims + d] = std::min(lo[tile * dims + d], value);
      hi[tile * dims + d] = std::max(hi[tile * dims + d], value);
    }
  }
}

// Lower bound of the reduced distance between any point of box a and any point of box b. Each gap
// is a rounded difference no larger than the rounded coordinate difference of any pair, and the
// reduction is monotone, so the bound never exceeds an exactly computed pair distance.
inline double box_rdist(const double* lo_a, const double* hi_a, const double* lo_b, const double* hi_b,
                        index_t dims, Metric metric, double p) {
  double bound = 0.0;
  for (index_t d = 0; d < dims; ++d) {
    const double gap = std::max({0.0, lo_b[d] - hi_a[d], lo_a[d] - hi_b[d]});
    switch (metric) {
      case Metric::Euclidean:
        bound += gap * gap;
        break;
      case Metric::Manhattan:
        bound += gap;
        break;
      case Metric::Chebyshev:
        bound = std::max(bound, gap);
        break;
      default:
        bound += std::pow(gap, p);
    }
  }
  return bound * (1.0 - 1e-9);
}

// Points packed tile by tile in spatial order, feature-major, zero-padded; queries copied in their
// own spatial order. For Euclidean both are mean-centred, with squared norms and each tile's
// largest norm (for the rounding-error bound).
template <typename T>
struct PackedPoints {
  index_t n_tiles = 0;
  std::vector<index_t> point_order;  // (N,) packed position -> point index
  std::vector<index_t> query_order;  // (M,) sorted position -> query index
  std::vector<T> values;             // (n_tiles, D, kPointTile)
  std::vector<double> point_lo, point_hi;  // (n_tiles, D) bounding boxes
  std::vector<double> query_lo, query_hi;  // (n_query_tiles, D) bounding boxes
  std::vector<T> norms;              // (n_tiles, kPointTile) squared norms (Euclidean)
  std::vector<double> max_norm;      // (n_tiles,) largest norm in the tile (Euclidean)
  std::vector<T> sorted_queries;     // (M, D) row-major in query_order (centred for Euclidean)
  std::vector<T> query_norms;        // (M,) squared norms (Euclidean)
  std::vector<double> query_norm;    // (M,) norms (Euclidean)
};

template <typename T>
PackedPoints<T> pack_points(const T* queries, const T* points, const SearchParams& params) {
  const index_t n = params.n_points, dims = params.n_features, m = params.n_queries;
  const bool euclidean = params.metric == Metric::Euclidean;
  PackedPoints<T> packed;
  packed.n_tiles = (n + kPointTile - 1) / kPointTile;
  packed.point_order = spatial_order(points, n, dims, kPointTile);
  packed.query_order = params.exclude_self ? packed.point_order : spatial_order(queries, m, dims, kQueryTile);
  tile_boxes(points, packed.point_order, dims, kPointTile, packed.point_lo, packed.point_hi);
  tile_boxes(queries, packed.query_order, dims, kQueryTile, packed.query_lo, packed.query_hi);
  packed.values.assign(static_cast<std::size_t>(packed.n_tiles * dims * kPointTile), T(0));
  packed.sorted_queries.resize(static_cast<std::size_t>(m * dims));
  // Packing is O((N + M) D): threads pay off only for large inputs.
  const int pack_threads = (n + m) * dims > (index_t{1} << 22) ? resolve_threads(params.n_jobs) : 1;
  std::vector<double> mean(static_cast<std::size_t>(dims), 0.0);
  if (euclidean) {
    // Distances do not depend on the origin; centring keeps ||x||^2 - 2x.y from cancelling.
    for (index_t j = 0; j < n; ++j)
      for (index_t d = 0; d < dims; ++d) mean[d] += static_cast<double>(points[j * dims + d]);
    for (double& value : mean) value /= static_cast<double>(n);
    packed.norms.assign(static_cast<std::size_t>(packed.n_tiles * kPointTile), T(0));
    packed.max_norm.assign(static_cast<std::size_t>(packed.n_tiles), 0.0);
    packed.query_norms.resize(static_cast<std::size_t>(m));
    packed.query_norm.resize(static_cast<std::size_t>(m));
  }
#pragma omp parallel for schedule(static) num_threads(pack_threads)
  for (index_t tile = 0; tile < packed.n_tiles; ++tile) {
    T* block = packed.values.data() + tile * dims * kPointTile;
    for (index_t c = 0; c < kPointTile && tile * kPointTile + c < n; ++c) {
      const T* row = points + packed.point_order[tile * kPointTile + c] * dims;
      double norm2 = 0.0;
      for (index_t d = 0; d < dims; ++d) {
        const T value = euclidean ? static_cast<T>(static_cast<double>(row[d]) - mean[d]) : row[d];
        block[d * kPointTile + c] = value;
        norm2 += static_cast<double>(value) * static_cast<double>(value);
      }
      if (euclidean) {
        packed.norms[tile * kPointTile + c] = static_cast<T>(norm2);
        packed.max_norm[tile] = std::max(packed.max_norm[tile], std::sqrt(norm2));
      }
    }
  }
#pragma omp parallel for schedule(static) num_threads(pack_threads)
  for (index_t i = 0; i < m; ++i) {
    const T* row = queries + packed.query_order[i] * dims;
    double norm2 = 0.0;
    for (index_t d = 0; d < dims; ++d) {
      const T value = euclidean ? static_cast<T>(static_cast<double>(row[d]) - mean[d]) : row[d];
      packed.sorted_queries[i * dims + d] = value;
      norm2 += static_cast<double>(value) * static_cast<double>(value);
    }
    if (euclidean) {
      packed.query_norms[i] = static_cast<T>(norm2);
      packed.query_norm[i] = std::sqrt(norm2);
    }
  }
  return packed;
}

// Bound on |approximate - exact| squared distance, per unit of (||q|| + ||c||)^2: the dot product,
// norms and final sum in T (gamma_{D+2}), plus rounding the centred coordinates to T, with a
// factor 4 of headroom.
template <typename T>
double error_factor(index_t n_features) {
  const double unit = static_cast<double>(std::numeric_limits<T>::epsilon()) / 2.0;
  return 4.0 * static_cast<double>(n_features + 8) * unit;
}

// Runs `body(tile, scratch_thread)` for every query tile over OpenMP threads, polling Ctrl-C, and
// rethrows the first exception (or Cancelled) after the parallel region.
template <typename Body>
void for_each_query_tile(index_t n_queries, int n_jobs, Cancellation& cancel, Body&& body) {
  const index_t n_tiles = (n_queries + kQueryTile - 1) / kQueryTile;
  std::exception_ptr failure;
  std::mutex failure_mutex;
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(resolve_threads(n_jobs))
  {
    const bool caller = omp_get_thread_num() == 0;
#pragma omp for schedule(dynamic, 1)
    for (index_t tile = 0; tile < n_tiles; ++tile) {
      if (failed.load(std::memory_order_relaxed) || cancel.stop_requested(caller)) continue;
      try {
        body(tile, [&] { return cancel.stop_requested(caller) || failed.load(std::memory_order_relaxed); });
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        failed.store(true, std::memory_order_relaxed);
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  if (cancel.cancelled()) throw Cancelled();
}

// A float/double limit no smaller than `limit` (rounding toward +inf), so comparing values of type
// T against it never drops a candidate that the float64 comparison would keep.
template <typename T>
inline T widen_limit(double limit) {
  if (!(limit < static_cast<double>(std::numeric_limits<T>::max()))) return std::numeric_limits<T>::infinity();
  T rounded = static_cast<T>(limit);
  if (static_cast<double>(rounded) < limit) rounded = std::nextafter(rounded, std::numeric_limits<T>::infinity());
  return rounded;
}

// Whether any of the kChunk values is <= limit (a branch-free, vectorisable test).
constexpr index_t kChunk = 16;
static_assert(kPointTile % kChunk == 0, "rows are scanned in whole chunks");
template <typename V>
inline bool any_at_most(const V* values, V limit) {
  constexpr index_t lanes = sizeof(NarrowVec<V>) / sizeof(V);
  NarrowVec<V> chunk;
  std::memcpy(&chunk, values, sizeof(chunk));
  auto hits = chunk <= limit;
  for (index_t c = lanes; c < kChunk; c += lanes) {
    std::memcpy(&chunk, values + c, sizeof(chunk));
    hits |= chunk <= limit;
  }
  for (index_t l = 0; l < lanes; ++l) {
    if (hits[l]) return true;
  }
  return false;
}

// Visits the exact reduced distance of every candidate (query, point) that may pass
// `threshold(i)` (inclusive) for the i-th query of sorted query tile `tile`:
// `visit(i, query index, point index, rdist)`. Candidate tiles are visited nearest box first and
// the scan stops once no query of the tile can accept anything from the remaining tiles.
template <typename T, typename Threshold, typename Visit, typename Stop>
void scan_tile(const T* queries, const T* points, const SearchParams& params, const PackedPoints<T>& packed,
               index_t tile, std::vector<T>& approx, std::vector<double>& exact,
               std::vector<std::pair<double, index_t>>& visit_order, Threshold&& threshold, Visit&& visit,
               Stop&& stop) {
  const index_t dims = params.n_features, n = params.n_points;
  const index_t q_begin = tile * kQueryTile;
  const index_t n_rows = std::min(kQueryTile, params.n_queries - q_begin);
  const bool euclidean = params.metric == Metric::Euclidean;
  const double factor = euclidean ? error_factor<T>(dims) : 0.0;
  visit_order.clear();
  for (index_t point_tile = 0; point_tile < packed.n_tiles; ++point_tile) {
    const double bound = box_rdist(packed.query_lo.data() + tile * dims, packed.query_hi.data() + tile * dims,
                                   packed.point_lo.data() + point_tile * dims,
                                   packed.point_hi.data() + point_tile * dims, dims, params.metric, params.p);
    visit_order.emplace_back(bound, point_tile);
  }
  std::sort(visit_order.begin(), visit_order.end());
  for (const auto& [box_bound, point_tile] : visit_order) {
    if (stop()) return;
    double widest = -std::numeric_limits<double>::infinity();
    for (index_t i = 0; i < n_rows; ++i) widest = std::max(widest, threshold(i));
    if (box_bound > widest) return;
    const T* block = packed.values.data() + point_tile * dims * kPointTile;
    const index_t j_begin = point_tile * kPointTile;
    const index_t n_cols = std::min(kPointTile, n - j_begin);
    if (euclidean) {
      euclidean_tile(packed.sorted_queries.data() + q_begin * dims, packed.query_norms.data() + q_begin, n_rows,
                     block, packed.norms.data() + point_tile * kPointTile, dims, approx.data());
      for (index_t i = 0; i < n_rows; ++i) {
        const index_t sorted_q = q_begin + i;
        const index_t q = packed.query_order[sorted_q];
        const double reach = packed.query_norm[sorted_q] + packed.max_norm[point_tile];
        const double error = factor * reach * reach;
        const T* row = approx.data() + i * kPointTile;
        // Thresholds only shrink while a tile is scanned, so a stale one shortlists a superset.
        T limit = widen_limit<T>(threshold(i) + error);
        for (index_t c0 = 0; c0 < n_cols; c0 += kChunk) {
          if (!any_at_most(row + c0, limit)) continue;
          for (index_t c = c0; c < std::min(c0 + kChunk, n_cols); ++c) {
            if (row[c] > limit) continue;
            const index_t j = packed.point_order[j_begin + c];
            if (params.exclude_self && j == q) continue;
            visit(i, q, j, euclidean_exact(queries + q * dims, points + j * dims, dims));
            limit = widen_limit<T>(threshold(i) + error);
          }
        }
      }
    } else {
      exact_tile(params.metric, packed.sorted_queries.data() + q_begin * dims, n_rows, block, dims, params.p,
                 exact.data());
      for (index_t i = 0; i < n_rows; ++i) {
        const index_t q = packed.query_order[q_begin + i];
        const double* row = exact.data() + i * kPointTile;
        double limit = threshold(i);
        for (index_t c0 = 0; c0 < n_cols; c0 += kChunk) {
          if (!any_at_most(row + c0, limit)) continue;
          for (index_t c = c0; c < std::min(c0 + kChunk, n_cols); ++c) {
            if (row[c] > limit) continue;
            const index_t j = packed.point_order[j_begin + c];
            if (params.exclude_self && j == q) continue;
            visit(i, q, j, row[c]);
            limit = threshold(i);
          }
        }
      }
    }
  }
}

template <typename T>
void kneighbors_precomputed(const T* matrix, const SearchParams& params, index_t k, T* distances, index_t* indices,
                            Cancellation& cancel) {
  const index_t n = params.n_points;
  std::vector<Entry> heaps(static_cast<std::size_t>(kQueryTile * k * resolve_threads(params.n_jobs)));
  for_each_query_tile(params.n_queries, params.n_jobs, cancel, [&](index_t tile, auto&&) {
    Entry* scratch = heaps.data() + static_cast<index_t>(omp_get_thread_num()) * kQueryTile * k;
    const index_t q_end = std::min(params.n_queries, (tile + 1) * kQueryTile);
    for (index_t q = tile * kQueryTile; q < q_end; ++q) {
      TopK top{scratch, 0, k};
      const T* row = matrix + q * n;
      for (index_t j = 0; j < n; ++j) {
        if (params.exclude_self && j == q) continue;
        const double key = static_cast<double>(row[j]);
        if (key <= top.threshold()) top.offer(Entry{key, j});
      }
      write_sorted(top, params, distances + q * k, indices + q * k);
    }
  });
}

}  // namespace

template <typename T>
void kneighbors_cpu(const T* queries, const T* points, const SearchParams& requested, index_t n_neighbors,
                    T* distances, index_t* indices, Cancellation& cancel) {
  const SearchParams params = with_thread_count(requested);
  const index_t k = n_neighbors;
  if (params.n_queries == 0) return;
  if (k < 1 || k > params.n_points - (params.exclude_self ? 1 : 0)) {
    throw std::invalid_argument("n_neighbors = " + std::to_string(k) + " is out of range for " +
                                std::to_string(params.n_points) + " points");
  }
  if (params.metric == Metric::Precomputed) return kneighbors_precomputed(queries, params, k, distances, indices, cancel);
  const PackedPoints<T> packed = pack_points(queries, points, params);
  const int n_threads = resolve_threads(params.n_jobs);
  // Per-thread scratch, allocated before the parallel region.
  std::vector<std::vector<T>> approx(static_cast<std::size_t>(n_threads));
  std::vector<std::vector<double>> exact(static_cast<std::size_t>(n_threads));
  std::vector<std::vector<Entry>> heaps(static_cast<std::size_t>(n_threads));
  std::vector<std::vector<std::pair<double, index_t>>> visit_orders(static_cast<std::size_t>(n_threads));
  for (int t = 0; t < n_threads; ++t) {
    if (params.metric == Metric::Euclidean) approx[t].resize(static_cast<std::size_t>(kQueryTile * kPointTile));
    else exact[t].resize(static_cast<std::size_t>(kQueryTile * kPointTile));
    heaps[t].resize(static_cast<std::size_t>(kQueryTile * k));
    visit_orders[t].reserve(static_cast<std::size_t>(packed.n_tiles));
  }
  for_each_query_tile(params.n_queries, params.n_jobs, cancel, [&](index_t tile, auto&& stop) {
    const int thread = omp_get_thread_num();
    const index_t q_begin = tile * kQueryTile;
    const index_t n_rows = std::min(kQueryTile, params.n_queries - q_begin);
    TopK tops[kQueryTile];
    for (index_t i = 0; i < n_rows; ++i) tops[i] = TopK{heaps[thread].data() + i * k, 0, k};
    scan_tile(
        queries, points, params, packed, tile, approx[thread], exact[thread], visit_orders[thread],
        [&](index_t i) { return tops[i].threshold(); },
        [&](index_t i, index_t, index_t j, double key) { tops[i].offer(Entry{key, j}); }, stop);
    if (stop()) return;
    for (index_t i = 0; i < n_rows; ++i) {
      const index_t q = packed.query_order[q_begin + i];
      write_sorted(tops[i], params, distances + q * k, indices + q * k);
    }
  });
}

template <typename T>
RadiusResult<T> radius_neighbors_cpu(const T* queries, const T* points, const SearchParams& requested, double radius,
                                     Cancellation& cancel) {
  const SearchParams params = with_thread_count(requested);
  const index_t m = params.n_queries;
  const double reach = dist_to_rdist(radius, params.metric, params.p);
  // Hits of each query, in increasing point index.
  std::vector<std::vector<Entry>> query_hits(static_cast<std::size_t>(m));
  const int n_threads = resolve_threads(params.n_jobs);

  if (params.metric == Metric::Precomputed) {
    const index_t n = params.n_points;
    for_each_query_tile(m, params.n_jobs, cancel, [&](index_t tile, auto&&) {
      const index_t q_end = std::min(m, (tile + 1) * kQueryTile);
      for (index_t q = tile * kQueryTile; q < q_end; ++q) {
        const T* row = queries + q * n;
        for (index_t j = 0; j < n; ++j) {
          if (params.exclude_self && j == q) continue;
          const double key = static_cast<double>(row[j]);
          if (key <= reach) query_hits[q].push_back(Entry{key, j});
        }
      }
    });
  } else {
    const PackedPoints<T> packed = pack_points(queries, points, params);
    std::vector<std::vector<T>> approx(static_cast<std::size_t>(n_threads));
    std::vector<std::vector<double>> exact(static_cast<std::size_t>(n_threads));
    std::vector<std::vector<std::pair<double, index_t>>> visit_orders(static_cast<std::size_t>(n_threads));
    for (int t = 0; t < n_threads; ++t) {
      if (params.metric == Metric::Euclidean) approx[t].resize(static_cast<std::size_t>(kQueryTile * kPointTile));
      else exact[t].resize(static_cast<std::size_t>(kQueryTile * kPointTile));
      visit_orders[t].reserve(static_cast<std::size_t>(packed.n_tiles));
    }
    for_each_query_tile(m, params.n_jobs, cancel, [&](index_t tile, auto&& stop) {
      const int thread = omp_get_thread_num();
      const index_t q_begin = tile * kQueryTile;
      const index_t n_rows = std::min(kQueryTile, m - q_begin);
      scan_tile(
          queries, points, params, packed, tile, approx[thread], exact[thread], visit_orders[thread],
          [&](index_t) { return reach; },
          [&](index_t, index_t q, index_t j, double key) {
            if (key <= reach) query_hits[q].push_back(Entry{key, j});
          },
          stop);
      if (stop()) return;
      // Candidate tiles were visited nearest first; rows of the result list columns in order.
      for (index_t i = 0; i < n_rows; ++i) {
        std::vector<Entry>& hits = query_hits[packed.query_order[q_begin + i]];
        std::sort(hits.begin(), hits.end(), [](const Entry& a, const Entry& b) { return a.index < b.index; });
      }
    });
  }

  RadiusResult<T> result;
  result.indptr.assign(static_cast<std::size_t>(m + 1), 0);
  for (index_t q = 0; q < m; ++q) result.indptr[q + 1] = result.indptr[q] + static_cast<index_t>(query_hits[q].size());
  const index_t nnz = result.indptr[m];
  result.indices.resize(static_cast<std::size_t>(nnz));
  result.distances.resize(static_cast<std::size_t>(nnz));
#pragma omp parallel for schedule(static) num_threads(n_threads)
  for (index_t q = 0; q < m; ++q) {
    index_t out = result.indptr[q];
    for (const Entry& hit : query_hits[q]) {
      result.indices[out] = hit.index;
      result.distances[out] = static_cast<T>(rdist_to_dist(hit.key, params.metric, params.p));
      ++out;
    }
  }
  return result;
}

template <typename T>
void kneighbors_among_cpu(const T* queries, const T* points, const SearchParams& params, const index_t* candidates,
                          index_t n_candidates, index_t n_neighbors, T* distances, index_t* indices,
                          Cancellation& cancel) {
  if (params.metric == Metric::Precomputed) {
    throw std::invalid_argument("re-ranking candidates needs points, not a precomputed distance matrix");
  }
  const index_t k = n_neighbors;
  const index_t d = params.n_features;
  // Each query meets n_candidates points, not n_points: the thread count follows that work.
  SearchParams work = params;
  work.n_points = n_candidates;
  const int n_jobs = with_thread_count(work).n_jobs;
  std::vector<std::vector<Entry>> heaps(static_cast<std::size_t>(resolve_threads(n_jobs)),
                                        std::vector<Entry>(static_cast<std::size_t>(k)));
  for_each_query_tile(params.n_queries, n_jobs, cancel, [&](index_t tile, auto&&) {
    Entry* heap = heaps[static_cast<std::size_t>(omp_get_thread_num())].data();
    const index_t q_end = std::min(params.n_queries, (tile + 1) * kQueryTile);
    for (index_t q = tile * kQueryTile; q < q_end; ++q) {
      TopK top{heap, 0, k};
      const index_t* row = candidates + q * n_candidates;
      for (index_t c = 0; c < n_candidates; ++c) {
        const index_t j = row[c];
        if (j < 0 || j >= params.n_points) {
          throw std::invalid_argument("candidate " + std::to_string(j) + " of query " + std::to_string(q) +
                                      " is not a point index in [0, " + std::to_string(params.n_points) + ")");
        }
        if (params.exclude_self && j == q) continue;
        double key;
        detail::exact_rdists(params.metric, queries + q * d, points + j * d, 1, d, params.p, &key);
        if (key > top.threshold()) continue;
        // A repeated candidate counts once (a k-long scan, only for candidates that would enter).
        if (std::any_of(top.heap, top.heap + top.size, [j](const Entry& e) { return e.index == j; })) continue;
        top.offer(Entry{key, j});
      }
      if (top.size < k) {
        throw std::invalid_argument("query " + std::to_string(q) + " has " + std::to_string(top.size) +
                                    " candidates other than itself, fewer than n_neighbors = " + std::to_string(k));
      }
      write_sorted(top, params, distances + q * k, indices + q * k);
    }
  });
}

template void kneighbors_among_cpu<float>(const float*, const float*, const SearchParams&, const index_t*, index_t,
                                          index_t, float*, index_t*, Cancellation&);
template void kneighbors_among_cpu<double>(const double*, const double*, const SearchParams&, const index_t*, index_t,
                                           index_t, double*, index_t*, Cancellation&);
template void kneighbors_cpu<float>(const float*, const float*, const SearchParams&, index_t, float*, index_t*,
                                    Cancellation&);
template void kneighbors_cpu<double>(const double*, const double*, const SearchParams&, index_t, double*, index_t*,
                                     Cancellation&);
template RadiusResult<float> radius_neighbors_cpu<float>(const float*, const float*, const SearchParams&, double,
                                                         Cancellation&);
template RadiusResult<double> radius_neighbors_cpu<double>(const double*, const double*, const SearchParams&, double,
                                                           Cancellation&);

}  // namespace isogan::knn
