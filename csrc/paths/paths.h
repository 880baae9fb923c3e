// Geodesic distances: all-pairs / multi-source shortest paths over an undirected weighted graph
// (Isomap's neighbour graph), Floyd-Warshall on a dense matrix, and the min-plus product that
// maps out-of-sample points onto a fitted geodesic matrix.
//
// Semantics follow scipy.sparse.csgraph.shortest_path(directed=False) on a CSR input: every stored
// entry (explicit zeros included) is an edge, an undirected edge {i, j} weighs the smallest stored
// w_ij or w_ji, unreachable pairs are +inf, the diagonal is 0. Weights are validated non-negative
// and not NaN by the Python layer; +inf weights behave as missing edges.
#pragma once

#include <cstdint>
#include <vector>

#include "common/common.h"

namespace isogan {

// Read-only view of a symmetric CSR graph as produced by `symmetrize_csr`: each undirected edge is
// stored in both rows, columns sorted and unique within a row, no self loops.
template <typename T>
struct CsrGraphView {
  index_t n_nodes = 0;
  const index_t* indptr = nullptr;         // (n_nodes + 1,) row offsets into indices / weights
  const std::int32_t* indices = nullptr;   // (nnz,) column of each edge, in [0, n_nodes)
  const T* weights = nullptr;              // (nnz,) non-negative edge weights
};

// An owning symmetric CSR graph.
template <typename T>
struct SymmetricCsr {
  std::vector<index_t> indptr;        // (n_nodes + 1,)
  std::vector<std::int32_t> indices;  // (nnz,)
  std::vector<T> weights;             // (nnz,)
};

// Builds the undirected graph of a (possibly asymmetric) CSR matrix: edge {i, j} for every stored
// (i, j) or (j, i), weight the minimum over those stored entries (duplicates included), self loops
// dropped, -0.0 weights normalised to +0.0.
// indptr: (n_nodes + 1,) int64; indices: (nnz,) int32 in [0, n_nodes); weights: (nnz,) T.
template <typename T>
SymmetricCsr<T> symmetrize_csr(index_t n_nodes, const index_t* indptr, const std::int32_t* indices,
                               const T* weights);

// Shortest-path distances from `sources` to every node, one source per task, sources spread over
// `n_threads` OpenMP threads with a dynamic schedule. Each search is a label-correcting Dijkstra
// over windows of distances one median edge wide, with the adjacency of the nodes ahead
// prefetched (see paths_cpu.cpp); its rows are bit-identical to a one-node-at-a-time Dijkstra's,
// scipy's included.
// sources: (n_sources,) int64 in [0, n_nodes); out: (n_sources, n_nodes) row-major, fully written.
// column_order: nullptr, or (n_nodes,) a permutation of [0, n_nodes): each search then runs in a
// thread-local row and writes out[r, column_order[v]] = distance to node v. This lets the caller
// run on a graph relabelled for cache locality (node v of `graph` is node column_order[v] of the
// caller's graph) and still receive rows in its own column order, with no second output array.
template <typename T>
void dijkstra_cpu(const CsrGraphView<T>& graph, const index_t* sources, index_t n_sources, T* out,
                  int n_threads, Cancellation& cancel, const index_t* column_order = nullptr);

// All-pairs shortest paths, row by row, reusing finished rows (see paths_cpu.cpp): computes the
// rows of sources order[start..stop) of `out`, assuming the rows of order[0..start) are complete.
// The source at position p reuses only the rows at positions < p - 64, so the result is the same
// for any thread count and any split of [0, n_nodes) into calls.
// order: (n_nodes,) a permutation of [0, n_nodes) (a random one spreads finished rows evenly,
// which is what lets later searches stop early); out: (n_nodes, n_nodes) row-major.
template <typename T>
void all_pairs_cpu(const CsrGraphView<T>& graph, const index_t* order, index_t start, index_t stop, T* out,
                   int n_threads, Cancellation& cancel);

// All-pairs shortest paths in place on a dense matrix (blocked Floyd-Warshall).
// dist: (n, n) row-major; on entry edge weights with +inf for missing edges and 0 on the diagonal,
// on exit the shortest-path distances.
template <typename T>
void floyd_warshall_cpu(T* dist, index_t n, int n_threads, Cancellation& cancel);

// Arguments of the out-of-sample min-plus product
//   out[q, j] = min over e in [query_indptr[q], query_indptr[q+1]) of
//               (neighbor_dist[e] + dist[neighbor_index[e], j]),
// +inf for a query without neighbours. Same additions and comparisons as scikit-learn's
// Isomap.transform, so results are bit-identical to it.
template <typename T>
struct MinPlusParams {
  index_t n_queries = 0;
  index_t n_nodes = 0;
  const index_t* query_indptr = nullptr;    // (n_queries + 1,) offsets into the neighbour arrays
  const index_t* neighbor_index = nullptr;  // (nnz,) training-point index of each neighbour
  const T* neighbor_dist = nullptr;         // (nnz,) distance from the query to that neighbour
  const T* dist = nullptr;                  // (n_nodes, n_nodes) training geodesic distances
  T* out = nullptr;                         // (n_queries, n_nodes) result
};

template <typename T>
void min_plus_cpu(const MinPlusParams<T>& params, int n_threads, Cancellation& cancel);

// Batched GPU shortest paths: how many sources one launch takes (all of them when the two
// (sources, n_nodes) byte flag arrays fit `flag_budget_bytes`, 1 GiB unless a caller, such as a
// test of the batched branch on a small graph, passes less) and the device scratch bytes one call
// allocates besides its output. Plain arithmetic, in every build, so that memory predictions are
// testable without a GPU.
constexpr index_t kShortestPathsFlagBudgetBytes = index_t{1} << 30;

inline index_t shortest_paths_sources_per_batch(index_t n_nodes, index_t n_sources,
                                                index_t flag_budget_bytes = kShortestPathsFlagBudgetBytes) {
  const index_t fitting = flag_budget_bytes / (2 * (n_nodes > 1 ? n_nodes : 1));
  const index_t batch = n_sources < fitting ? n_sources : fitting;
  return batch > 1 ? batch : 1;
}

inline index_t shortest_paths_cuda_scratch_bytes(index_t n_nodes, index_t n_sources,
                                                 index_t flag_budget_bytes = kShortestPathsFlagBudgetBytes) {
  return 2 * shortest_paths_sources_per_batch(n_nodes, n_sources, flag_budget_bytes) * n_nodes +
         static_cast<index_t>(sizeof(int));
}

// The transform min-plus on the GPU puts queries on grid.y, so one launch takes at most 65,535 of
// them (CUDA's grid.y limit); more are split over launches of at most `max_queries_per_launch`.
constexpr index_t kMinPlusMaxQueriesPerLaunch = 65535;

#ifdef ISOGAN_WITH_CUDA
// CUDA twins. All pointers are device pointers, all work is queued on `stream` (no host
// synchronisation except where a convergence flag must be read back, documented per function).

// Batched multi-source shortest paths (frontier Bellman-Ford with atomic min relaxation) over a
// symmetric CSR graph on the device, shortest_paths_sources_per_batch(n_nodes, n_sources,
// flag_budget_bytes) sources per batch. Synchronises `stream` once per few rounds to read the
// "anything changed" flag.
// indptr: (n_nodes + 1,) int64; indices: (nnz,) int32; weights: (nnz,) T;
// sources: (n_sources,) int64; out: (n_sources, n_nodes) row-major.
template <typename T>
void shortest_paths_cuda(const CsrGraphView<T>& graph, const index_t* sources, index_t n_sources, T* out,
                         std::uintptr_t stream, index_t flag_budget_bytes = kShortestPathsFlagBudgetBytes);

// Blocked Floyd-Warshall in place on the device. dist: (n, n) row-major, as for the CPU twin.
template <typename T>
void floyd_warshall_cuda(T* dist, index_t n, std::uintptr_t stream);

// Writes the Floyd-Warshall start matrix of a symmetric CSR graph (as built by symmetrize_csr):
// +inf everywhere, 0 on the diagonal, w_ij at every stored edge (i, j).
// graph: device CSR (see CsrGraphView); dist: (n_nodes, n_nodes) row-major device, overwritten.
template <typename T>
void csr_to_floyd_start_cuda(const CsrGraphView<T>& graph, T* dist, std::uintptr_t stream);

// Turns a dense adjacency matrix into the Floyd-Warshall start matrix in place, with scipy's dense
// semantics: 0 and +inf are missing edges (+inf), an edge {i, j} weighs min over the nonzero finite
// a_ij, a_ji, the diagonal is 0. dist: (n, n) row-major.
template <typename T>
void dense_graph_to_floyd_start_cuda(T* dist, index_t n, std::uintptr_t stream);

// Device twin of min_plus_cpu; every pointer in `params` is a device pointer. Queries go
// max_queries_per_launch at a time, in [1, kMinPlusMaxQueriesPerLaunch].
template <typename T>
void min_plus_cuda(const MinPlusParams<T>& params, std::uintptr_t stream,
                   index_t max_queries_per_launch = kMinPlusMaxQueriesPerLaunch);
#endif

}  // namespace isogan
