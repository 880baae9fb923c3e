#include "paths/paths.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <atomic>
#include <thread>

namespace isogan {
namespace {

template <typename T>
constexpr T infinity() {
  return std::numeric_limits<T>::infinity();
}

// ------------------------------------------------------------------ symmetrisation

template <typename T>
SymmetricCsr<T> symmetrize_impl(index_t n_nodes, const index_t* indptr, const std::int32_t* indices,
                                const T* weights) {
  // Count each stored off-diagonal entry once in its row and once in its column's row.
  std::vector<index_t> degree(static_cast<std::size_t>(n_nodes) + 1, 0);
  for (index_t row = 0; row < n_nodes; ++row) {
    for (index_t e = indptr[row]; e < indptr[row + 1]; ++e) {
      const index_t col = indices[e];
      if (col == row) continue;
      ++degree[row + 1];
      ++degree[col + 1];
    }
  }
  std::partial_sum(degree.begin(), degree.end(), degree.begin());
  struct Neighbor {
    std::int32_t node;
    T weight;
  };
  std::vector<Neighbor> both(static_cast<std::size_t>(degree[n_nodes]));
  std::vector<index_t> fill(degree.begin(), degree.end() - 1);
  for (index_t row = 0; row < n_nodes; ++row) {
    for (index_t e = indptr[row]; e < indptr[row + 1]; ++e) {
      const index_t col = indices[e];
      if (col == row) continue;
      const T weight = weights[e] + T(0);  // -0.0 + 0.0 == +0.0: keeps the bit order of keys monotone
      both[fill[row]++] = {static_cast<std::int32_t>(col), weight};
      both[fill[col]++] = {static_cast<std::int32_t>(row), weight};
    }
  }
  // Sort each row by column and keep the smallest weight of each column.
  SymmetricCsr<T> graph;
  graph.indptr.assign(static_cast<std::size_t>(n_nodes) + 1, 0);
  graph.indices.reserve(both.size());
  graph.weights.reserve(both.size());
  for (index_t row = 0; row < n_nodes; ++row) {
    auto first = both.begin() + degree[row];
    auto last = both.begin() + degree[row + 1];
    std::sort(first, last, [](const Neighbor& a, const Neighbor& b) {
      return a.node < b.node || (a.node == b.node && a.weight < b.weight);
    });
    for (auto it = first; it != last; ++it) {
      if (it != first && it->node == (it - 1)->node) continue;
      graph.indices.push_back(it->node);
      graph.weights.push_back(it->weight);
    }
    graph.indptr[row + 1] = static_cast<index_t>(graph.indices.size());
  }
  return graph;
}

// ------------------------------------------------------------------ Dijkstra

// The bits of a non-negative IEEE float, read as an unsigned integer, order like the float.
template <typename T>
struct BitsKey {
  std::uint64_t operator()(T value) const {
    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t> bits;
    std::memcpy(&bits, &value, sizeof(T));
    return bits;
  }
};

// The window of width 1 / inverse_width that holds a non-negative distance: floor(d / width),
// clamped (monotone in d, so it is a valid radix heap key).
template <typename T>
struct WindowKey {
  double inverse_width = 1.0;
  std::uint64_t operator()(T value) const {
    constexpr double kLast = 4611686018427387904.0;  // 2^62
    return static_cast<std::uint64_t>(std::min(static_cast<double>(value) * inverse_width, kLast));
  }
};

// Monotone radix heap (Ahuja, Mehlhorn, Orlin, Tarjan 1990) over 64-bit keys computed from
// non-negative distances by a monotone `Key`. Dijkstra with non-negative weights only ever
// pushes distances >= the last popped one, which is all a radix heap needs; each entry then
// moves down at most once per bucket level, and a pop is a scan of one small bucket instead of a
// sift through log(n) levels of a comparison heap.
// Lazy deletion: a node is pushed again when its distance improves; an entry whose distance is no
// longer the node's is stale and skipped by the caller.
template <typename T, typename Key>
class RadixHeap {
 public:
  struct Entry {
    T dist;
    std::int32_t node;
  };

  explicit RadixHeap(Key key = Key{}) : key_(key) {}

  void reset() {
    for (auto& bucket : buckets_) bucket.clear();
    occupied_ = 0;
    last_ = 0;
    size_ = 0;
  }

  bool empty() const { return size_ == 0; }

  void push(T dist, std::int32_t node) {
    place({dist, node});
    ++size_;
  }

  // An entry of smallest key: the last pushed among those.
  Entry pop() {
    std::vector<Entry>& current = open_window();
    const Entry top = current.back();
    current.pop_back();
    --size_;
    return top;
  }

  // All entries of the smallest key (the current window). Entries pushed with that same key are
  // appended to it while the caller walks it by index (the vector may reallocate: index, do not
  // hold references); close_window() then drops them all.
  std::vector<Entry>& open_window() {
    if (buckets_[0].empty()) {
      const int level = 1 + __builtin_ctzll(occupied_);
      std::vector<Entry>& bucket = buckets_[level];
      std::uint64_t smallest = key_(bucket[0].dist);
      for (const Entry& entry : bucket) smallest = std::min(smallest, key_(entry.dist));
      last_ = smallest;
      for (const Entry& entry : bucket) place(entry);
      bucket.clear();
      occupied_ &= ~(std::uint64_t{1} << (level - 1));
    }
    return buckets_[0];
  }

  // Whether an entry of this distance would join the current window.
  bool in_window(T dist) const { return key_(dist) == last_; }

  void close_window() {
    size_ -= static_cast<index_t>(buckets_[0].size());
    buckets_[0].clear();
  }

 private:
  // Level 0 holds the key last_; level l >= 1 the keys whose highest bit differing from last_
  // is bit l - 1 (summary bit l - 1 of occupied_ set while it holds entries).
  void place(const Entry& entry) {
    const std::uint64_t differ = key_(entry.dist) ^ last_;
    if (differ == 0) {
      buckets_[0].push_back(entry);
      return;
    }
    const int level = 64 - __builtin_clzll(differ);
    buckets_[level].push_back(entry);
    occupied_ |= std::uint64_t{1} << (level - 1);
  }

  Key key_;
  std::vector<Entry> buckets_[65];
  std::uint64_t occupied_ = 0;
  std::uint64_t last_ = 0;
  index_t size_ = 0;
};

template <typename T>
using DistanceHeap = RadixHeap<T, BitsKey<T>>;

template <typename T>
using WindowHeap = RadixHeap<T, WindowKey<T>>;

// One edge as the inner loop reads it: target and weight side by side, so a node's neighbour list
// is one contiguous run of cache lines.
template <typename T>
struct PackedEdge {
  std::int32_t target;
  T weight;
};

// Windows of the multi-source searches are one median edge weight wide (from a sample). On
// k-nearest-neighbour swiss-roll graphs a window then holds about 250 (N = 100k) to 900 (N = 1M)
// nodes, expanded 1.01 times each on average; 0.1 to 16 median edges were measured, 1 to 4 were
// fastest. Any width gives the same distances: only the work depends on it.
constexpr double kWindowPerMedianEdge = 1.0;
constexpr index_t kWindowWeightSample = 4096;
// Keeps 1 / width finite (0 * inf would be NaN in the key).
constexpr double kMaxInverseWidth = 1e300;

template <typename T>
WindowKey<T> window_key(const CsrGraphView<T>& graph) {
  const index_t nnz = graph.indptr[graph.n_nodes];
  const index_t stride = std::max<index_t>(1, nnz / kWindowWeightSample);
  std::vector<T> sample;
  for (index_t e = 0; e < nnz; e += stride) {
    const T weight = graph.weights[e];
    if (weight > T(0) && weight < infinity<T>()) sample.push_back(weight);
  }
  if (sample.empty()) return {};  // no positive finite weight: every distance is 0 or +inf
  std::nth_element(sample.begin(), sample.begin() + sample.size() / 2, sample.end());
  const double median = static_cast<double>(sample[sample.size() / 2]);
  return {std::min(1.0 / (kWindowPerMedianEdge * median), kMaxInverseWidth)};
}

// Entries ahead of the one being expanded whose adjacency is prefetched: the node's row offsets
// 2 * kLookahead ahead, its edges and distance kLookahead ahead, so that each expansion finds
// them in cache instead of waiting on memory (the searches are latency-bound at large N: 176 ns
// per node visited in random order at N = 1M, 12 ns in memory order).
constexpr std::size_t kLookahead = 8;
// Cache lines of one node's edge list prefetched at most.
constexpr index_t kPrefetchEdgeLines = 4;
// A window walked in queue order takes at most this many entries beyond twice its size at
// opening; then it is finished in distance order. Light edges chained inside one window would
// otherwise let queue order expand nodes over and over (a 20,000-node chain: 500x slower).
constexpr std::size_t kWindowSlack = 64;

// Per-thread state of the searches.
template <typename T>
struct SearchWorkspace {
  explicit SearchWorkspace(WindowKey<T> key) : heap(key) {}

  WindowHeap<T> heap;
  std::vector<typename WindowHeap<T>::Entry> ordered;  // binary min-heap of a window finished in order
};

// Shortest-path distances from `source` into `row` (n_nodes,): label-correcting Dijkstra over
// windows of distances. The smallest window's nodes are expanded in queue order, with their
// adjacency prefetched ahead; a node improved again inside its window is expanded again.
// Same result as the one-at-a-time Dijkstra, bit for bit: both end at the fixed point of
// d(v) = min(d(v), d(u) + w_uv) over all edges, which is, for each node, the minimum over paths of
// the sum accumulated from the source along the path, whatever order the relaxations come in
// (float addition of a non-negative weight is monotone and never decreases a sum, and the
// minimum of the same float sums is the same float).
template <typename T>
void dijkstra_one_source(const index_t* indptr, const PackedEdge<T>* edges, index_t n_nodes, index_t source,
                         T* row, SearchWorkspace<T>& work) {
  using Entry = typename WindowHeap<T>::Entry;
  WindowHeap<T>& heap = work.heap;
  std::fill(row, row + n_nodes, infinity<T>());
  row[source] = T(0);
  heap.reset();
  heap.push(T(0), static_cast<std::int32_t>(source));
  // Relaxes the edges of a node popped at `entry` (skipped when stale), handing improved
  // neighbours to `push(dist, node)`.
  auto expand = [&](const Entry entry, auto&& push) {  // a copy: pushes may reallocate the window
    if (entry.dist != row[entry.node]) return;  // stale: the node was reached more cheaply since
    for (index_t e = indptr[entry.node]; e < indptr[entry.node + 1]; ++e) {
      const T candidate = entry.dist + edges[e].weight;
      if (candidate < row[edges[e].target]) {
        row[edges[e].target] = candidate;
        push(candidate, edges[e].target);
      }
    }
  };
  auto push_to_heap = [&](T dist, std::int32_t node) { heap.push(dist, node); };
  constexpr index_t kEdgesPerLine = 64 / static_cast<index_t>(sizeof(PackedEdge<T>));
  const auto later = [](const Entry& a, const Entry& b) { return a.dist > b.dist; };
  while (!heap.empty()) {
    auto& window = heap.open_window();
    const std::size_t budget = 2 * window.size() + kWindowSlack;
    std::size_t i = 0;
    for (; i < window.size() && i < budget; ++i) {
      if (i + 2 * kLookahead < window.size()) __builtin_prefetch(indptr + window[i + 2 * kLookahead].node);
      if (i + kLookahead < window.size()) {
        const std::int32_t ahead = window[i + kLookahead].node;
        __builtin_prefetch(row + ahead);
        const index_t first = indptr[ahead];
        const index_t lines =
            std::min(kPrefetchEdgeLines, (indptr[ahead + 1] - first + kEdgesPerLine - 1) / kEdgesPerLine);
        for (index_t line = 0; line < lines; ++line) __builtin_prefetch(edges + first + line * kEdgesPerLine);
      }
      expand(window[i], push_to_heap);
    }
    if (i < window.size()) {
      std::vector<Entry>& ordered = work.ordered;
      ordered.assign(window.begin() + static_cast<std::ptrdiff_t>(i), window.end());
      std::make_heap(ordered.begin(), ordered.end(), later);
      auto push_in_order = [&](T dist, std::int32_t node) {
        if (!heap.in_window(dist)) {
          heap.push(dist, node);
          return;
        }
        ordered.push_back({dist, node});
        std::push_heap(ordered.begin(), ordered.end(), later);
      };
      while (!ordered.empty()) {
        std::pop_heap(ordered.begin(), ordered.end(), later);
        const Entry entry = ordered.back();
        ordered.pop_back();
        expand(entry, push_in_order);
      }
    }
    heap.close_window();
  }
}

// Dijkstra from `source` into row `source` of the all-pairs matrix, reusing finished rows: when
// the search settles a node u whose row is already complete, d(s, v) <= d(s, u) + D[u, v] for all v
// is applied to the whole row at once (one vectorised pass) and u is not expanded. Every later
// candidate that does not beat the row's current value is pruned, so the search stops at the
// first finished nodes in every direction instead of sweeping the whole graph.
// Correctness: take a shortest path s -> v and its first finished node u; the nodes before u are
// expanded (or already covered by an earlier absorbed row with a value no larger), u is settled
// at d(s, u), and absorbing u gives d(s, u) + D[u, v] = d(s, v). Sums are associated differently
// than in a plain Dijkstra, so results may differ from it in the last bits.
// out: (n_nodes, n_nodes); position_of: (n_nodes,) place of each node in the source order; rows of
// nodes placed before `available_before` are complete in `out`.
template <typename T>
void reuse_one_source(const index_t* indptr, const PackedEdge<T>* edges, index_t n_nodes, index_t source, T* out,
                      const index_t* position_of, index_t available_before, int absorb_budget, DistanceHeap<T>& heap) {
  T* row = out + source * n_nodes;
  std::fill(row, row + n_nodes, infinity<T>());
  row[source] = T(0);
  heap.reset();
  heap.push(T(0), static_cast<std::int32_t>(source));
  int absorbed = 0;
  while (!heap.empty()) {
    const auto top = heap.pop();
    const std::int32_t node = top.node;
    const T distance = row[node];
    if (top.dist != distance) continue;
    if (absorbed < absorb_budget && position_of[node] < available_before) {
      ++absorbed;
      const T* finished = out + static_cast<index_t>(node) * n_nodes;
      for (index_t v = 0; v < n_nodes; ++v) {
        const T candidate = distance + finished[v];
        row[v] = candidate < row[v] ? candidate : row[v];
      }
      continue;
    }
    const PackedEdge<T>* edge = edges + indptr[node];
    const PackedEdge<T>* end = edges + indptr[node + 1];
    for (; edge != end; ++edge) {
      const T candidate = distance + edge->weight;
      if (candidate < row[edge->target]) {
        row[edge->target] = candidate;
        heap.push(candidate, edge->target);
      }
    }
  }
}

// A source never reuses the rows of the kReuseLag sources just before it in the order.
constexpr index_t kReuseLag = 64;

template <typename T>
std::vector<PackedEdge<T>> pack_edges(const CsrGraphView<T>& graph) {
  const index_t nnz = graph.indptr[graph.n_nodes];
  std::vector<PackedEdge<T>> edges(static_cast<std::size_t>(nnz));
  for (index_t e = 0; e < nnz; ++e) edges[e] = {graph.indices[e], graph.weights[e]};
  return edges;
}

// ------------------------------------------------------------------ Floyd-Warshall

constexpr index_t kFloydTile = 64;

// Classic Floyd-Warshall restricted to pivots [k0, k1), rows [i0, i1) and columns [j0, j1): the
// sequential-pivot updates of the diagonal tile and of the pivot row / column panels.
template <typename T>
void floyd_tile_sequential(T* dist, index_t n, index_t k0, index_t k1, index_t i0, index_t i1, index_t j0,
                           index_t j1) {
  for (index_t k = k0; k < k1; ++k) {
    const T* pivot_row = dist + k * n;
    for (index_t i = i0; i < i1; ++i) {
      T* target = dist + i * n;
      const T via = target[k];
      if (via == infinity<T>()) continue;
      for (index_t j = j0; j < j1; ++j) {
        const T candidate = via + pivot_row[j];
        target[j] = candidate < target[j] ? candidate : target[j];
      }
    }
  }
}

// dist[i, j] = min(dist[i, j], min_k dist[i, k] + dist[k, j]) for a tile whose rows and columns
// lie outside the pivot block: the pivot panels are final, so the pivot order does not matter.
template <typename T>
void floyd_tile_min_plus(T* dist, index_t n, index_t k0, index_t k1, index_t i0, index_t i1, index_t j0,
                         index_t j1) {
  for (index_t i = i0; i < i1; ++i) {
    T* target = dist + i * n;
    for (index_t k = k0; k < k1; ++k) {
      const T via = target[k];
      if (via == infinity<T>()) continue;
      const T* pivot_row = dist + k * n;
      for (index_t j = j0; j < j1; ++j) {
        const T candidate = via + pivot_row[j];
        target[j] = candidate < target[j] ? candidate : target[j];
      }
    }
  }
}

}  // namespace

template <typename T>
SymmetricCsr<T> symmetrize_csr(index_t n_nodes, const index_t* indptr, const std::int32_t* indices,
                               const T* weights) {
  return symmetrize_impl(n_nodes, indptr, indices, weights);
}

template <typename T>
void dijkstra_cpu(const CsrGraphView<T>& graph, const index_t* sources, index_t n_sources, T* out,
                  int n_threads, Cancellation& cancel, const index_t* column_order) {
  const index_t n_nodes = graph.n_nodes;
  const std::vector<PackedEdge<T>> edges = pack_edges(graph);
  const WindowKey<T> key = window_key(graph);

#pragma omp parallel num_threads(n_threads)
  {
    SearchWorkspace<T> work(key);
    // With a column order the search runs in graph order in this row, whose relaxations hit
    // neighbouring cache lines when the graph is relabelled for locality; one pass then scatters it.
    std::vector<T> local_row(column_order != nullptr ? static_cast<std::size_t>(n_nodes) : 0);
    const bool is_caller_thread = omp_get_thread_num() == 0;
#pragma omp for schedule(dynamic, 1)
    for (index_t r = 0; r < n_sources; ++r) {
      if (cancel.stop_requested(is_caller_thread)) continue;
      T* out_row = out + r * n_nodes;
      if (column_order == nullptr) {
        dijkstra_one_source(graph.indptr, edges.data(), n_nodes, sources[r], out_row, work);
        continue;
      }
      dijkstra_one_source(graph.indptr, edges.data(), n_nodes, sources[r], local_row.data(), work);
      for (index_t v = 0; v < n_nodes; ++v) out_row[column_order[v]] = local_row[v];
    }
  }
  if (cancel.cancelled()) throw Cancelled();
}

template <typename T>
void all_pairs_cpu(const CsrGraphView<T>& graph, const index_t* order, index_t start, index_t stop, T* out,
                   int n_threads, Cancellation& cancel) {
  const index_t n_nodes = graph.n_nodes;
  const std::vector<PackedEdge<T>> edges = pack_edges(graph);
  std::vector<index_t> position_of(static_cast<std::size_t>(n_nodes));
  for (index_t p = 0; p < n_nodes; ++p) position_of[order[p]] = p;
  // One absorbed row costs n_nodes additions, a plain expansion about nnz / n_nodes relaxations;
  // the budget caps absorption at a fraction of one full Dijkstra, which bounds the cost of the
  // first sources, whose searches meet few finished rows.
  const index_t nnz = graph.indptr[n_nodes];
  const int absorb_budget =
      static_cast<int>(std::clamp<index_t>(4 * (nnz + n_nodes) / std::max<index_t>(1, n_nodes), 8, 256));
  // row_finished[p - start]: the row of order[p] is complete (release store, acquire load).
  std::vector<std::uint8_t> row_finished(static_cast<std::size_t>(stop - start), 0);
  // Positions are handed out in increasing order, so the lowest one in flight only ever needs
  // rows that are already complete: waiting cannot deadlock.
  std::atomic<index_t> next_position{start};
#pragma omp parallel num_threads(n_threads)
  {
    DistanceHeap<T> heap;
    const bool is_caller_thread = omp_get_thread_num() == 0;
    index_t complete_before = start;  // this thread has seen every row before it finished
    for (;;) {
      const index_t p = next_position.fetch_add(1, std::memory_order_relaxed);
      if (p >= stop || cancel.stop_requested(is_caller_thread)) break;
      // The source at position p reuses exactly the rows at positions < p - kReuseLag: a fixed
      // set, so the result does not depend on timing, thread count or how the caller splits
      // [0, n_nodes) into calls. The lag keeps the wait below rare: the rows it needs were
      // handed out kReuseLag sources ago.
      const index_t available_before = std::max<index_t>(0, p - kReuseLag);
      bool stopped = false;
      while (complete_before < available_before && !stopped) {
        if (__atomic_load_n(&row_finished[complete_before - start], __ATOMIC_ACQUIRE)) {
          ++complete_before;
        } else {
          stopped = cancel.stop_requested(is_caller_thread);
          std::this_thread::yield();
        }
      }
      if (stopped) break;
      reuse_one_source(graph.indptr, edges.data(), n_nodes, order[p], out, position_of.data(), available_before,
                       absorb_budget, heap);
      __atomic_store_n(&row_finished[p - start], std::uint8_t{1}, __ATOMIC_RELEASE);
    }
  }
  if (cancel.cancelled()) throw Cancelled();
}

template <typename T>
void floyd_warshall_cpu(T* dist, index_t n, int n_threads, Cancellation& cancel) {
  const index_t n_tiles = (n + kFloydTile - 1) / kFloydTile;
  auto tile_begin = [&](index_t t) { return t * kFloydTile; };
  auto tile_end = [&](index_t t) { return std::min(n, (t + 1) * kFloydTile); };
  for (index_t kt = 0; kt < n_tiles; ++kt) {
    const index_t k0 = tile_begin(kt), k1 = tile_end(kt);
    // Phase 1: close the diagonal tile.
    floyd_tile_sequential(dist, n, k0, k1, k0, k1, k0, k1);
#pragma omp parallel num_threads(n_threads)
    {
      const bool is_caller_thread = omp_get_thread_num() == 0;
      // Phase 2: pivot row panel and pivot column panel, through the closed diagonal tile.
#pragma omp for schedule(dynamic, 1)
      for (index_t t = 0; t < 2 * n_tiles; ++t) {
        const index_t other = t % n_tiles;
        if (other == kt || cancel.stop_requested(is_caller_thread)) continue;
        if (t < n_tiles) {
          floyd_tile_sequential(dist, n, k0, k1, k0, k1, tile_begin(other), tile_end(other));
        } else {
          floyd_tile_sequential(dist, n, k0, k1, tile_begin(other), tile_end(other), k0, k1);
        }
      }
      // Phase 3: every other tile, one min-plus product with the final panels.
#pragma omp for schedule(dynamic, 1)
      for (index_t t = 0; t < n_tiles * n_tiles; ++t) {
        const index_t it = t / n_tiles, jt = t % n_tiles;
        if (it == kt || jt == kt || cancel.stop_requested(is_caller_thread)) continue;
        floyd_tile_min_plus(dist, n, k0, k1, tile_begin(it), tile_end(it), tile_begin(jt), tile_end(jt));
      }
    }
    if (cancel.cancelled()) throw Cancelled();
  }
}

template <typename T>
void min_plus_cpu(const MinPlusParams<T>& params, int n_threads, Cancellation& cancel) {
  const index_t n_nodes = params.n_nodes;
  const index_t nnz = params.query_indptr[params.n_queries];
  for (index_t e = 0; e < nnz; ++e) {
    if (params.neighbor_index[e] < 0 || params.neighbor_index[e] >= n_nodes) {
      throw std::invalid_argument("neighbor index " + std::to_string(params.neighbor_index[e]) +
                                  " is out of range for " + std::to_string(n_nodes) + " training points");
    }
  }
  // Column blocks keep one output run in L1 while every neighbour row streams past it, and give
  // the threads work when there are fewer queries than threads.
  constexpr index_t kColumnBlock = 2048;
  const index_t n_blocks = (n_nodes + kColumnBlock - 1) / kColumnBlock;
  const index_t n_tasks = params.n_queries * n_blocks;
#pragma omp parallel num_threads(n_threads)
  {
    const bool is_caller_thread = omp_get_thread_num() == 0;
#pragma omp for schedule(dynamic, 4)
    for (index_t task = 0; task < n_tasks; ++task) {
      if (cancel.stop_requested(is_caller_thread)) continue;
      const index_t query = task / n_blocks;
      const index_t j0 = (task % n_blocks) * kColumnBlock;
      const index_t j1 = std::min(n_nodes, j0 + kColumnBlock);
      T* target = params.out + query * n_nodes;
      std::fill(target + j0, target + j1, infinity<T>());
      for (index_t e = params.query_indptr[query]; e < params.query_indptr[query + 1]; ++e) {
        const T offset = params.neighbor_dist[e];
        const T* source = params.dist + params.neighbor_index[e] * n_nodes;
        for (index_t j = j0; j < j1; ++j) {
          const T candidate = offset + source[j];
          target[j] = candidate < target[j] ? candidate : target[j];
        }
      }
    }
  }
  if (cancel.cancelled()) throw Cancelled();
}

#define ISOGAN_INSTANTIATE_PATHS(T)                                                                     \
  template SymmetricCsr<T> symmetrize_csr<T>(index_t, const index_t*, const std::int32_t*, const T*); \
  template void dijkstra_cpu<T>(const CsrGraphView<T>&, const index_t*, index_t, T*, int, Cancellation&, \
                                  const index_t*);                                                      \
  template void all_pairs_cpu<T>(const CsrGraphView<T>&, const index_t*, index_t, index_t, T*, int,       \
                                 Cancellation&);                                                        \
  template void floyd_warshall_cpu<T>(T*, index_t, int, Cancellation&);                                \
  template void min_plus_cpu<T>(const MinPlusParams<T>&, int, Cancellation&);

ISOGAN_INSTANTIATE_PATHS(float)
ISOGAN_INSTANTIATE_PATHS(double)

}  // namespace isogan
