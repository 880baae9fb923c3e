// CPU kd-tree kNN / radius search: O(N log N) build, O(log N)-ish queries for low-dimensional data.
//
// The tree is a complete binary tree in implicit layout (node i has children 2i+1 and 2i+2, all
// leaves on the last level), each node a contiguous range of a point permutation, split at its
// middle position on the widest coordinate of its bounding box (nth_element), so depth is
// ceil(log2(N / leaf_size)) + 1 whatever the data. Queries traverse it iteratively, nearest
// child first, with an explicit stack of at most one pending sibling per level.
//
// Exactness: leaf points are measured with the brute force's own exact reduced distances
// (knn_distance.h), and a subtree is skipped only when its box lower bound is strictly larger
// than the current k-th reduced distance (or the reduced radius). The bound is computed with the
// same float64 operations as a point distance, from gaps fl(lo - q) / fl(q - hi) that are no larger
// than any |fl(x - q)| inside the box; rounding is monotone, so for p = 1, 2, inf the bound never
// exceeds a point's exact reduced distance and ties are never lost. std::pow is not guaranteed
// monotone, so for general p the bound is shrunk by a relative 1e-9.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "knn/knn.h"
#include "knn/knn_distance.h"

#if defined(__GNUC__) && !defined(__clang__)
// Box bounds must round exactly like point distances: no fused multiply-adds.
#define ISOGAN_KD_EXACT __attribute__((optimize("fp-contract=off")))
#else
#define ISOGAN_KD_EXACT
#endif

namespace isogan::knn {
namespace {

using detail::accumulate_rdist;
using detail::Entry;
using detail::TopK;

constexpr index_t kQueryChunk = 64;     // queries per OpenMP work item
constexpr int kMaxLevels = 62;           // 2^62 - 1 nodes fit index_t; more points only make leaves larger
constexpr double kPowSlack = 1.0 - 1e-9;  // general-p bounds: room for a non-monotone std::pow

// Levels of the tree: the fewest such that every leaf holds at most `leaf_size` points.
int tree_levels(index_t n_points, index_t leaf_size) {
  int levels = 1;
  index_t largest_leaf = n_points;
  while (largest_leaf > leaf_size && levels < kMaxLevels) {
    largest_leaf = (largest_leaf + 1) / 2;
    ++levels;
  }
  return levels;
}

template <typename T>
struct KdTree {
  index_t n_points = 0;
  index_t n_features = 0;
  int n_levels = 0;
  index_t n_nodes = 0;              // 2^n_levels - 1
  index_t first_leaf = 0;           // 2^(n_levels - 1) - 1
  index_t largest_leaf = 0;         // most points in one leaf
  std::vector<index_t> order;       // (N,) tree position -> point index
  std::vector<T> points;            // (N, D) row-major, rows in tree order
  std::vector<index_t> node_begin;  // (n_nodes,) first tree position of each node
  std::vector<index_t> node_end;    // (n_nodes,) one past its last
  std::vector<double> bounds;       // (n_nodes, 2, D) bounding box: lower corner, then upper corner

  const double* lower(index_t node) const { return bounds.data() + node * 2 * n_features; }
  const double* upper(index_t node) const { return lower(node) + n_features; }
};

// Computes `node`'s bounding box over its range; an internal node then splits its range at the
// middle position on the box's widest coordinate, a leaf copies its points in tree order.
// points: (N, D) row-major
template <typename T>
void build_node(KdTree<T>& tree, const T* points, index_t node) {
  const index_t dims = tree.n_features;
  const index_t begin = tree.node_begin[node], end = tree.node_end[node];
  double* lo = tree.bounds.data() + node * 2 * dims;
  double* hi = lo + dims;
  std::fill(lo, lo + dims, std::numeric_limits<double>::infinity());
  std::fill(hi, hi + dims, -std::numeric_limits<double>::infinity());
  for (index_t i = begin; i < end; ++i) {
    const T* row = points + tree.order[i] * dims;
    for (index_t d = 0; d < dims; ++d) {
      const double value = static_cast<double>(row[d]);
      lo[d] = std::min(lo[d], value);
      hi[d] = std::max(hi[d], value);
    }
  }
  if (node >= tree.first_leaf) {
    for (index_t i = begin; i < end; ++i) {
      std::copy(points + tree.order[i] * dims, points + (tree.order[i] + 1) * dims, tree.points.data() + i * dims);
    }
    return;
  }
  index_t widest = 0;
  for (index_t d = 1; d < dims; ++d) {
    if (hi[d] - lo[d] > hi[widest] - lo[widest]) widest = d;
  }
  const index_t middle = begin + (end - begin) / 2;
  std::nth_element(tree.order.begin() + begin, tree.order.begin() + middle, tree.order.begin() + end,
                   [&](index_t a, index_t b) { return points[a * dims + widest] < points[b * dims + widest]; });
  tree.node_begin[2 * node + 1] = begin;
  tree.node_end[2 * node + 1] = middle;
  tree.node_begin[2 * node + 2] = middle;
  tree.node_end[2 * node + 2] = end;
}

// Builds every node of the subtree under `root` (on level `root_level`), level by level, until
// `stop()` says the search was cancelled.
template <typename T, typename Stop>
void build_subtree(KdTree<T>& tree, const T* points, index_t root, int root_level, Stop&& stop) {
  for (int level = root_level; level < tree.n_levels; ++level) {
    if (stop()) return;
    const index_t width = index_t{1} << (level - root_level);
    const index_t first = (root + 1) * width - 1;
    for (index_t node = first; node < first + width; ++node) build_node(tree, points, node);
  }
}

// Builds the top levels on the calling thread until there are a few subtrees per thread, then
// each subtree on one thread: one parallel region, no barrier per level.
// points: (N, D) row-major
template <typename T>
KdTree<T> build_tree(const T* points, index_t n_points, index_t n_features, index_t leaf_size, int n_threads,
                     Cancellation& cancel) {
  KdTree<T> tree;
  tree.n_points = n_points;
  tree.n_features = n_features;
  tree.n_levels = tree_levels(n_points, leaf_size);
  tree.n_nodes = (index_t{1} << tree.n_levels) - 1;
  tree.first_leaf = (index_t{1} << (tree.n_levels - 1)) - 1;
  tree.order.resize(static_cast<std::size_t>(n_points));
  for (index_t i = 0; i < n_points; ++i) tree.order[i] = i;
  tree.node_begin.assign(static_cast<std::size_t>(tree.n_nodes), 0);
  tree.node_end.assign(static_cast<std::size_t>(tree.n_nodes), 0);
  tree.bounds.resize(static_cast<std::size_t>(tree.n_nodes * 2 * n_features));
  tree.points.resize(static_cast<std::size_t>(n_points * n_features));
  tree.node_end[0] = n_points;
  int top_levels = 0;
  while (top_levels < tree.n_levels && (index_t{1} << top_levels) < 4 * static_cast<index_t>(n_threads)) {
    if (cancel.stop_requested(true)) throw Cancelled();
    const index_t first = (index_t{1} << top_levels) - 1;
    for (index_t node = first; node <= 2 * first; ++node) build_node(tree, points, node);
    ++top_levels;
  }
  if (top_levels < tree.n_levels) {
    const index_t first = (index_t{1} << top_levels) - 1;
#pragma omp parallel num_threads(n_threads)
    {
      const bool caller = omp_get_thread_num() == 0;
#pragma omp for schedule(dynamic, 1)
      for (index_t root = first; root <= 2 * first; ++root) {
        build_subtree(tree, points, root, top_levels, [&] { return cancel.stop_requested(caller); });
      }
    }
  }
  if (cancel.stop_requested(true)) throw Cancelled();
  tree.largest_leaf = 0;
  for (index_t leaf = tree.first_leaf; leaf < tree.n_nodes; ++leaf) {
    tree.largest_leaf = std::max(tree.largest_leaf, tree.node_end[leaf] - tree.node_begin[leaf]);
  }
  return tree;
}

// Lower bound of the reduced distance from `query` to any point of the box [lo, hi].
// query, lo, hi: (D,) float64
template <Metric M>
ISOGAN_KD_EXACT inline double box_rdist(const double* query, const double* lo, const double* hi, index_t n_features,
                                        double p) {
  double bound = 0.0;
  for (index_t d = 0; d < n_features; ++d) {
    const double below = lo[d] - query[d];
    const double above = query[d] - hi[d];
    const double gap = below > 0.0 ? below : (above > 0.0 ? above : 0.0);
    accumulate_rdist<M>(bound, gap, 0.0, p);
  }
  if constexpr (M == Metric::Minkowski) bound *= kPowSlack;
  return bound;
}

// Per-thread state of a traversal: the query in float64, leaf distances, the pending-node stack.
struct Scratch {
  std::vector<double> query;  // (D,)
  std::vector<double> rdist;  // (largest_leaf,)
  struct Pending {
    index_t node;
    double bound;
  };
  Pending stack[2 * kMaxLevels];
};

// Visits every point of the tree whose reduced distance to query `q` is <= threshold():
// `visit(point index, rdist)`. threshold() may shrink during the walk (kNN); a node is skipped
// only when its box bound exceeds the current threshold.
template <typename T, Metric M, typename Threshold, typename Visit>
ISOGAN_KD_EXACT void traverse(const KdTree<T>& tree, const T* query, index_t q, const SearchParams& params,
                              Scratch& scratch, Threshold&& threshold, Visit&& visit) {
  const index_t dims = tree.n_features;
  double* query_values = scratch.query.data();
  for (index_t d = 0; d < dims; ++d) query_values[d] = static_cast<double>(query[d]);
  auto* stack = scratch.stack;
  int depth = 0;
  stack[depth++] = {0, box_rdist<M>(query_values, tree.lower(0), tree.upper(0), dims, params.p)};
  while (depth > 0) {
    const auto [node, bound] = stack[--depth];
    if (bound > threshold()) continue;
    if (node >= tree.first_leaf) {
      const index_t begin = tree.node_begin[node];
      const index_t count = tree.node_end[node] - begin;
      detail::exact_rdists(M, query, tree.points.data() + begin * dims, count, dims, params.p, scratch.rdist.data());
      for (index_t r = 0; r < count; ++r) {
        const double key = scratch.rdist[r];
        if (key > threshold()) continue;
        const index_t j = tree.order[begin + r];
        if (params.exclude_self && j == q) continue;
        visit(j, key);
      }
      continue;
    }
    const index_t left = 2 * node + 1, right = 2 * node + 2;
    const double left_bound = box_rdist<M>(query_values, tree.lower(left), tree.upper(left), dims, params.p);
    const double right_bound = box_rdist<M>(query_values, tree.lower(right), tree.upper(right), dims, params.p);
    const bool left_first = left_bound <= right_bound;
    const index_t near = left_first ? left : right, far = left_first ? right : left;
    const double near_bound = left_first ? left_bound : right_bound;
    const double far_bound = left_first ? right_bound : left_bound;
    const double limit = threshold();
    if (far_bound <= limit) stack[depth++] = {far, far_bound};
    if (near_bound <= limit) stack[depth++] = {near, near_bound};
  }
}

// Runs `body(chunk, position_begin, position_end)` over chunks of query positions on `n_threads`
// threads, after `setup()` made each thread's scratch; polls Ctrl-C and rethrows the first
// exception (or Cancelled) after the parallel region.
template <typename Setup, typename Body>
void for_each_query_chunk(index_t n_queries, int n_threads, Cancellation& cancel, Setup&& setup, Body&& body) {
  const index_t n_chunks = (n_queries + kQueryChunk - 1) / kQueryChunk;
  std::exception_ptr failure;
  std::mutex failure_mutex;
  std::atomic<bool> failed{false};
  auto fail = [&] {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (!failure) failure = std::current_exception();
    failed.store(true, std::memory_order_relaxed);
  };
#pragma omp parallel num_threads(n_threads)
  {
    const bool caller = omp_get_thread_num() == 0;
    Scratch scratch;
    try {
      setup(scratch);
    } catch (...) {
      fail();
    }
#pragma omp for schedule(dynamic, 1)
    for (index_t chunk = 0; chunk < n_chunks; ++chunk) {
      if (failed.load(std::memory_order_relaxed) || cancel.stop_requested(caller)) continue;
      try {
        body(scratch, chunk, chunk * kQueryChunk, std::min(n_queries, (chunk + 1) * kQueryChunk));
      } catch (...) {
        fail();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  if (cancel.cancelled()) throw Cancelled();
}

// Threads worth waking: a few thousand queries each, so tiny searches stay on one thread.
int search_threads(const SearchParams& params) {
  constexpr index_t kQueriesPerThread = 2048;
  const index_t useful = std::max<index_t>(1, std::max(params.n_queries, params.n_points) / kQueriesPerThread);
  return static_cast<int>(std::min<index_t>(resolve_threads(params.n_jobs), useful));
}

// Queries that are the fit points are answered in tree order (neighbouring queries share the
// nodes they visit); other queries in their own order.
template <typename T>
bool queries_are_points(const T* queries, const T* points, const SearchParams& params) {
  return params.exclude_self || (queries == points && params.n_queries == params.n_points);
}

template <typename T>
void check_tree_search(const SearchParams& params, index_t leaf_size) {
  if (params.metric == Metric::Precomputed) throw std::invalid_argument("the kd-tree needs points, not precomputed distances");
  if (leaf_size < 1) throw std::invalid_argument("leaf_size must be >= 1, got " + std::to_string(leaf_size));
  if (params.n_points < 1 || params.n_features < 1) throw std::invalid_argument("the kd-tree needs at least one point and one feature");
}

template <typename T, Metric M>
void kneighbors_tree(const KdTree<T>& tree, const T* queries, const SearchParams& params, index_t k, bool tree_order,
                     int n_threads, T* distances, index_t* indices, Cancellation& cancel) {
  const index_t dims = params.n_features;
  std::vector<std::vector<Entry>> heaps(static_cast<std::size_t>(n_threads));
  for_each_query_chunk(
      params.n_queries, n_threads, cancel,
      [&](Scratch& scratch) {
        scratch.query.resize(static_cast<std::size_t>(dims));
        scratch.rdist.resize(static_cast<std::size_t>(tree.largest_leaf));
        heaps[omp_get_thread_num()].resize(static_cast<std::size_t>(k));
      },
      [&](Scratch& scratch, index_t, index_t position_begin, index_t position_end) {
        Entry* heap = heaps[omp_get_thread_num()].data();
        for (index_t position = position_begin; position < position_end; ++position) {
          const index_t q = tree_order ? tree.order[position] : position;
          TopK top{heap, 0, k};
          traverse<T, M>(
              tree, queries + q * dims, q, params, scratch, [&] { return top.threshold(); },
              [&](index_t j, double key) { top.offer(Entry{key, j}); });
          detail::write_sorted(top, params, distances + q * k, indices + q * k);
        }
      });
}

template <typename T, Metric M>
RadiusResult<T> radius_tree(const KdTree<T>& tree, const T* queries, const SearchParams& params, double reach,
                            bool tree_order, int n_threads, Cancellation& cancel) {
  const index_t m = params.n_queries, dims = params.n_features;
  const index_t n_chunks = (m + kQueryChunk - 1) / kQueryChunk;
  // Hits of each chunk's queries, query after query in position order, each sorted by index.
  std::vector<std::vector<Entry>> chunk_hits(static_cast<std::size_t>(n_chunks));
  std::vector<index_t> hit_count(static_cast<std::size_t>(m), 0);  // (M,) per query index
  auto query_at = [&](index_t position) { return tree_order ? tree.order[position] : position; };
  for_each_query_chunk(
      m, n_threads, cancel,
      [&](Scratch& scratch) {
        scratch.query.resize(static_cast<std::size_t>(dims));
        scratch.rdist.resize(static_cast<std::size_t>(tree.largest_leaf));
      },
      [&](Scratch& scratch, index_t chunk, index_t position_begin, index_t position_end) {
        std::vector<Entry>& hits = chunk_hits[chunk];
        for (index_t position = position_begin; position < position_end; ++position) {
          const index_t q = query_at(position);
          const std::size_t first = hits.size();
          traverse<T, M>(
              tree, queries + q * dims, q, params, scratch, [&] { return reach; },
              [&](index_t j, double key) { hits.push_back(Entry{key, j}); });
          std::sort(hits.begin() + first, hits.end(), [](const Entry& a, const Entry& b) { return a.index < b.index; });
          hit_count[q] = static_cast<index_t>(hits.size() - first);
        }
      });
  RadiusResult<T> result;
  result.indptr.assign(static_cast<std::size_t>(m + 1), 0);
  for (index_t q = 0; q < m; ++q) result.indptr[q + 1] = result.indptr[q] + hit_count[q];
  const index_t nnz = result.indptr[m];
  result.indices.resize(static_cast<std::size_t>(nnz));
  result.distances.resize(static_cast<std::size_t>(nnz));
#pragma omp parallel for schedule(dynamic, 16) num_threads(n_threads)
  for (index_t chunk = 0; chunk < n_chunks; ++chunk) {
    std::size_t next = 0;
    for (index_t position = chunk * kQueryChunk; position < std::min(m, (chunk + 1) * kQueryChunk); ++position) {
      const index_t q = query_at(position);
      for (index_t out = result.indptr[q]; out < result.indptr[q + 1]; ++out, ++next) {
        const Entry& hit = chunk_hits[chunk][next];
        result.indices[out] = hit.index;
        result.distances[out] = static_cast<T>(detail::rdist_to_dist(hit.key, params.metric, params.p));
      }
    }
    std::vector<Entry>().swap(chunk_hits[chunk]);
  }
  return result;
}

}  // namespace

index_t kdtree_bytes(index_t n_points, index_t n_features, index_t value_size, index_t leaf_size) {
  const index_t n_nodes = (index_t{1} << tree_levels(n_points, std::max<index_t>(1, leaf_size))) - 1;
  const index_t per_node = 2 * static_cast<index_t>(sizeof(index_t)) + 2 * n_features * static_cast<index_t>(sizeof(double));
  return n_points * (static_cast<index_t>(sizeof(index_t)) + n_features * value_size) + n_nodes * per_node;
}

template <typename T>
void kneighbors_kdtree_cpu(const T* queries, const T* points, const SearchParams& params, index_t n_neighbors,
                           index_t leaf_size, T* distances, index_t* indices, Cancellation& cancel) {
  check_tree_search<T>(params, leaf_size);
  const index_t k = n_neighbors;
  if (k < 1 || k > params.n_points - (params.exclude_self ? 1 : 0)) {
    throw std::invalid_argument("n_neighbors = " + std::to_string(k) + " is out of range for " +
                                std::to_string(params.n_points) + " points");
  }
  if (params.n_queries == 0) return;
  const int n_threads = search_threads(params);
  const KdTree<T> tree = build_tree(points, params.n_points, params.n_features, leaf_size, n_threads, cancel);
  const bool tree_order = queries_are_points(queries, points, params);
  switch (params.metric) {
    case Metric::Euclidean:
      return kneighbors_tree<T, Metric::Euclidean>(tree, queries, params, k, tree_order, n_threads, distances, indices, cancel);
    case Metric::Manhattan:
      return kneighbors_tree<T, Metric::Manhattan>(tree, queries, params, k, tree_order, n_threads, distances, indices, cancel);
    case Metric::Chebyshev:
      return kneighbors_tree<T, Metric::Chebyshev>(tree, queries, params, k, tree_order, n_threads, distances, indices, cancel);
    default:
      return kneighbors_tree<T, Metric::Minkowski>(tree, queries, params, k, tree_order, n_threads, distances, indices, cancel);
  }
}

template <typename T>
RadiusResult<T> radius_neighbors_kdtree_cpu(const T* queries, const T* points, const SearchParams& params,
                                            double radius, index_t leaf_size, Cancellation& cancel) {
  check_tree_search<T>(params, leaf_size);
  const int n_threads = search_threads(params);
  const KdTree<T> tree = build_tree(points, params.n_points, params.n_features, leaf_size, n_threads, cancel);
  const bool tree_order = queries_are_points(queries, points, params);
  const double reach = detail::dist_to_rdist(radius, params.metric, params.p);
  switch (params.metric) {
    case Metric::Euclidean:
      return radius_tree<T, Metric::Euclidean>(tree, queries, params, reach, tree_order, n_threads, cancel);
    case Metric::Manhattan:
      return radius_tree<T, Metric::Manhattan>(tree, queries, params, reach, tree_order, n_threads, cancel);
    case Metric::Chebyshev:
      return radius_tree<T, Metric::Chebyshev>(tree, queries, params, reach, tree_order, n_threads, cancel);
    default:
      return radius_tree<T, Metric::Minkowski>(tree, queries, params, reach, tree_order, n_threads, cancel);
  }
}

template void kneighbors_kdtree_cpu<float>(const float*, const float*, const SearchParams&, index_t, index_t, float*,
                                           index_t*, Cancellation&);
template void kneighbors_kdtree_cpu<double>(const double*, const double*, const SearchParams&, index_t, index_t,
                                            double*, index_t*, Cancellation&);
template RadiusResult<float> radius_neighbors_kdtree_cpu<float>(const float*, const float*, const SearchParams&, double,
                                                                index_t, Cancellation&);
template RadiusResult<double> radius_neighbors_kdtree_cpu<double>(const double*, const double*, const SearchParams&,
                                                                  double, index_t, Cancellation&);

}  // namespace isogan::knn
