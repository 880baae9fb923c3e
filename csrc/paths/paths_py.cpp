// Bindings of paths/: symmetrised graphs, Dijkstra, Floyd-Warshall, the transform min-plus product.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/bindings.h"
#include "common/common.h"
#include "common/py_arrays.h"
#include "paths/paths.h"

namespace py = pybind11;
using isogan::bindings::carray;
using isogan::bindings::check_shape;
using isogan::bindings::Dtype;
using isogan::bindings::run_without_gil;
using isogan::bindings::vector_to_numpy;

namespace {

template <typename T>
isogan::CsrGraphView<T> graph_view(const carray<std::int64_t>& indptr, const carray<std::int32_t>& indices,
                                   const carray<T>& weights) {
  check_shape(indptr, "indptr", {-1});
  check_shape(indices, "indices", {-1});
  check_shape(weights, "weights", {indices.shape(0)});
  if (indptr.shape(0) < 1) throw std::invalid_argument("indptr must hold n_nodes + 1 >= 1 offsets");
  const py::ssize_t n_nodes = indptr.shape(0) - 1;
  const std::int64_t* offsets = indptr.data();
  if (offsets[0] != 0 || offsets[n_nodes] != indices.shape(0)) {
    throw std::invalid_argument("indptr must start at 0 and end at nnz");
  }
  for (py::ssize_t row = 0; row < n_nodes; ++row) {
    if (offsets[row + 1] < offsets[row]) throw std::invalid_argument("indptr must be non-decreasing");
  }
  const std::int32_t* columns = indices.data();
  for (py::ssize_t e = 0; e < indices.shape(0); ++e) {
    if (columns[e] < 0 || columns[e] >= n_nodes) {
      throw std::invalid_argument("column index " + std::to_string(columns[e]) + " is out of range for " +
                                  std::to_string(n_nodes) + " nodes");
    }
  }
  return {static_cast<isogan::index_t>(n_nodes), offsets, columns, weights.data()};
}

template <typename T>
isogan::MinPlusParams<T> min_plus_params(const carray<std::int64_t>& query_indptr,
                                         const carray<std::int64_t>& neighbor_index, const carray<T>& neighbor_dist,
                                         const carray<T>& dist, carray<T>& out) {
  check_shape(query_indptr, "query_indptr", {-1});
  check_shape(neighbor_index, "neighbor_index", {-1});
  check_shape(neighbor_dist, "neighbor_dist", {neighbor_index.shape(0)});
  check_shape(dist, "dist", {-1, -1});
  if (dist.shape(0) != dist.shape(1)) throw std::invalid_argument("dist must be square");
  if (query_indptr.shape(0) < 1) throw std::invalid_argument("query_indptr must hold n_queries + 1 offsets");
  const py::ssize_t n_queries = query_indptr.shape(0) - 1;
  check_shape(out, "out", {n_queries, dist.shape(0)});
  const std::int64_t* offsets = query_indptr.data();
  if (offsets[0] != 0 || offsets[n_queries] != neighbor_index.shape(0)) {
    throw std::invalid_argument("query_indptr must start at 0 and end at the number of neighbours");
  }
  for (py::ssize_t q = 0; q < n_queries; ++q) {
    if (offsets[q + 1] < offsets[q]) throw std::invalid_argument("query_indptr must be non-decreasing");
  }
  isogan::MinPlusParams<T> params;
  params.n_queries = n_queries;
  params.n_nodes = dist.shape(0);
  params.query_indptr = offsets;
  params.neighbor_index = neighbor_index.data();
  params.neighbor_dist = neighbor_dist.data();
  params.dist = dist.data();
  params.out = out.mutable_data();
  return params;
}

// Throws ValueError unless `order` (n_nodes,) is a permutation of range(n_nodes).
void check_permutation(const carray<std::int64_t>& order, const char* name, isogan::index_t n_nodes) {
  check_shape(order, name, {static_cast<py::ssize_t>(n_nodes)});
  const std::int64_t* nodes = order.data();
  std::vector<bool> seen(static_cast<std::size_t>(n_nodes), false);
  for (isogan::index_t v = 0; v < n_nodes; ++v) {
    const std::int64_t node = nodes[v];
    if (node < 0 || node >= n_nodes || seen[node]) {
      throw std::invalid_argument(std::string(name) + " must be a permutation of range(n_nodes)");
    }
    seen[node] = true;
  }
}

// Throws ValueError unless the batched GPU shortest paths' flag budget is positive.
void check_flag_budget(isogan::index_t flag_budget_bytes) {
  if (flag_budget_bytes < 1) {
    throw std::invalid_argument("flag_budget_bytes must be >= 1, got " + std::to_string(flag_budget_bytes));
  }
}

#ifdef ISOGAN_WITH_CUDA
// A symmetric CSR graph in device memory; the Python layer derives the addresses from validated arrays.
template <typename T>
isogan::CsrGraphView<T> device_graph(std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t weights,
                                     isogan::index_t n_nodes) {
  return {n_nodes, reinterpret_cast<const std::int64_t*>(indptr), reinterpret_cast<const std::int32_t*>(indices),
          reinterpret_cast<const T*>(weights)};
}

// Device-pointer entry points (torch/CuPy/DeviceArray memory, the caller's stream); `dtype` names the
// element type of the weights and distances.
template <typename T>
void bind_paths_cuda(py::module_& m) {
  m.def(
      "paths_shortest_paths_cuda",
      [](std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t weights, isogan::index_t n_nodes,
         std::uintptr_t sources, isogan::index_t n_sources, std::uintptr_t out, Dtype<T>, std::uintptr_t stream,
         isogan::index_t flag_budget_bytes) {
        check_flag_budget(flag_budget_bytes);
        const isogan::CsrGraphView<T> graph = device_graph<T>(indptr, indices, weights, n_nodes);
        py::gil_scoped_release release;
        isogan::shortest_paths_cuda(graph, reinterpret_cast<const std::int64_t*>(sources), n_sources,
                                    reinterpret_cast<T*>(out), stream, flag_budget_bytes);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("weights"), py::arg("n_nodes"), py::arg("sources"),
      py::arg("n_sources"), py::arg("out"), py::arg("dtype"), py::arg("stream"),
      py::arg("flag_budget_bytes") = isogan::kShortestPathsFlagBudgetBytes,
      "Batched shortest paths on device pointers (symmetric CSR graph) into out (n_sources, n_nodes); the sources\n"
      "go in batches whose two (batch, n_nodes) byte flag arrays fit flag_budget_bytes (default 1 GiB).");
  m.def(
      "paths_floyd_warshall_cuda",
      [](std::uintptr_t dist, isogan::index_t n, Dtype<T>, std::uintptr_t stream, bool from_dense_graph) {
        py::gil_scoped_release release;
        if (from_dense_graph) isogan::dense_graph_to_floyd_start_cuda(reinterpret_cast<T*>(dist), n, stream);
        isogan::floyd_warshall_cuda(reinterpret_cast<T*>(dist), n, stream);
      },
      py::arg("dist"), py::arg("n"), py::arg("dtype"), py::arg("stream"), py::arg("from_dense_graph") = false,
      "Blocked Floyd-Warshall in place on a device (n, n) matrix; from_dense_graph first turns an "
      "adjacency matrix (0 = no edge) into the start matrix.");
  m.def(
      "paths_csr_floyd_start_cuda",
      [](std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t weights, isogan::index_t n_nodes,
         std::uintptr_t dist, Dtype<T>, std::uintptr_t stream) {
        const isogan::CsrGraphView<T> graph = device_graph<T>(indptr, indices, weights, n_nodes);
        py::gil_scoped_release release;
        isogan::csr_to_floyd_start_cuda(graph, reinterpret_cast<T*>(dist), stream);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("weights"), py::arg("n_nodes"), py::arg("dist"),
      py::arg("dtype"), py::arg("stream"),
      "Floyd-Warshall start matrix (n_nodes, n_nodes) of a symmetric device CSR graph: +inf, 0 diagonal, edges.");
  m.def(
      "paths_min_plus_cuda",
      [](std::uintptr_t query_indptr, std::uintptr_t neighbor_index, std::uintptr_t neighbor_dist,
         std::uintptr_t dist, isogan::index_t n_queries, isogan::index_t n_nodes, std::uintptr_t out, Dtype<T>,
         std::uintptr_t stream, isogan::index_t max_queries_per_launch) {
        if (max_queries_per_launch < 1 || max_queries_per_launch > isogan::kMinPlusMaxQueriesPerLaunch) {
          throw std::invalid_argument("max_queries_per_launch must be in [1, " +
                                      std::to_string(isogan::kMinPlusMaxQueriesPerLaunch) + "], got " +
                                      std::to_string(max_queries_per_launch));
        }
        isogan::MinPlusParams<T> params;
        params.n_queries = n_queries;
        params.n_nodes = n_nodes;
        params.query_indptr = reinterpret_cast<const std::int64_t*>(query_indptr);
        params.neighbor_index = reinterpret_cast<const std::int64_t*>(neighbor_index);
        params.neighbor_dist = reinterpret_cast<const T*>(neighbor_dist);
        params.dist = reinterpret_cast<const T*>(dist);
        params.out = reinterpret_cast<T*>(out);
        py::gil_scoped_release release;
        isogan::min_plus_cuda(params, stream, max_queries_per_launch);
      },
      py::arg("query_indptr"), py::arg("neighbor_index"), py::arg("neighbor_dist"), py::arg("dist"),
      py::arg("n_queries"), py::arg("n_nodes"), py::arg("out"), py::arg("dtype"), py::arg("stream"),
      py::arg("max_queries_per_launch") = isogan::kMinPlusMaxQueriesPerLaunch,
      "The transform min-plus product on device pointers, max_queries_per_launch queries (at most 65535) a launch.");
}
#endif

template <typename T>
void bind_paths_for(py::module_& m) {
  m.def(
      "paths_symmetrize",
      [](const carray<std::int64_t>& indptr, const carray<std::int32_t>& indices, const carray<T>& weights) {
        const isogan::CsrGraphView<T> view = graph_view(indptr, indices, weights);
        isogan::SymmetricCsr<T> graph;
        {
          py::gil_scoped_release release;
          graph = isogan::symmetrize_csr(view.n_nodes, view.indptr, view.indices, view.weights);
        }
        return py::make_tuple(vector_to_numpy(graph.indptr), vector_to_numpy(graph.indices),
                              vector_to_numpy(graph.weights));
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("weights").noconvert(),
      "Undirected CSR graph (min weight per edge, sorted rows, no self loops) of a CSR matrix.");
  m.def(
      "paths_dijkstra",
      [](const carray<std::int64_t>& indptr, const carray<std::int32_t>& indices, const carray<T>& weights,
         const carray<std::int64_t>& sources, carray<T>& out, int n_jobs,
         const std::optional<carray<std::int64_t>>& column_order) {
        const isogan::CsrGraphView<T> graph = graph_view(indptr, indices, weights);
        check_shape(sources, "sources", {-1});
        check_shape(out, "out", {sources.shape(0), static_cast<py::ssize_t>(graph.n_nodes)});
        const std::int64_t* source_data = sources.data();
        for (py::ssize_t r = 0; r < sources.shape(0); ++r) {
          if (source_data[r] < 0 || source_data[r] >= graph.n_nodes) {
            throw std::invalid_argument("source " + std::to_string(source_data[r]) + " is out of range for " +
                                        std::to_string(graph.n_nodes) + " nodes");
          }
        }
        const std::int64_t* order_data = nullptr;
        if (column_order.has_value()) {
          check_permutation(*column_order, "column_order", graph.n_nodes);
          order_data = column_order->data();
        }
        T* out_data = out.mutable_data();
        const int n_threads = isogan::resolve_threads(n_jobs);
        run_without_gil([&](isogan::Cancellation& cancel) {
          isogan::dijkstra_cpu(graph, source_data, static_cast<isogan::index_t>(sources.shape(0)), out_data,
                               n_threads, cancel, order_data);
        });
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("weights").noconvert(),
      py::arg("sources").noconvert(), py::arg("out").noconvert(), py::arg("n_jobs") = 0,
      py::arg("column_order").noconvert() = py::none(),
      "Dijkstra from each source over a symmetric CSR graph into out (n_sources, n_nodes); with "
      "column_order (a permutation), out[r, column_order[v]] is the distance to node v.");
  m.def(
      "paths_all_pairs",
      [](const carray<std::int64_t>& indptr, const carray<std::int32_t>& indices, const carray<T>& weights,
         const carray<std::int64_t>& order, std::int64_t start, std::int64_t stop, carray<T>& out, int n_jobs) {
        const isogan::CsrGraphView<T> graph = graph_view(indptr, indices, weights);
        const py::ssize_t n_nodes = static_cast<py::ssize_t>(graph.n_nodes);
        check_permutation(order, "order", graph.n_nodes);
        check_shape(out, "out", {n_nodes, n_nodes});
        if (start < 0 || stop < start || stop > n_nodes) {
          throw std::invalid_argument("need 0 <= start <= stop <= n_nodes, got start=" + std::to_string(start) +
                                      ", stop=" + std::to_string(stop));
        }
        const std::int64_t* order_data = order.data();
        T* out_data = out.mutable_data();
        const int n_threads = isogan::resolve_threads(n_jobs);
        run_without_gil([&](isogan::Cancellation& cancel) {
          isogan::all_pairs_cpu(graph, order_data, start, stop, out_data, n_threads, cancel);
        });
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("weights").noconvert(),
      py::arg("order").noconvert(), py::arg("start"), py::arg("stop"), py::arg("out").noconvert(),
      py::arg("n_jobs") = 0,
      "Rows order[start:stop] of the all-pairs matrix out (N, N), reusing the rows of order[:start].");
  m.def(
      "paths_floyd_warshall",
      [](carray<T>& dist, int n_jobs) {
        check_shape(dist, "dist", {-1, -1});
        if (dist.shape(0) != dist.shape(1)) throw std::invalid_argument("dist must be square");
        T* data = dist.mutable_data();
        const int n_threads = isogan::resolve_threads(n_jobs);
        run_without_gil([&](isogan::Cancellation& cancel) {
          isogan::floyd_warshall_cpu(data, static_cast<isogan::index_t>(dist.shape(0)), n_threads, cancel);
        });
      },
      py::arg("dist").noconvert(), py::arg("n_jobs") = 0,
      "Blocked Floyd-Warshall in place on a dense (N, N) matrix (+inf = no edge, 0 diagonal).");
  m.def(
      "paths_min_plus",
      [](const carray<std::int64_t>& query_indptr, const carray<std::int64_t>& neighbor_index,
         const carray<T>& neighbor_dist, const carray<T>& dist, carray<T>& out, int n_jobs) {
        const isogan::MinPlusParams<T> params =
            min_plus_params(query_indptr, neighbor_index, neighbor_dist, dist, out);
        const int n_threads = isogan::resolve_threads(n_jobs);
        run_without_gil([&](isogan::Cancellation& cancel) { isogan::min_plus_cpu(params, n_threads, cancel); });
      },
      py::arg("query_indptr").noconvert(), py::arg("neighbor_index").noconvert(),
      py::arg("neighbor_dist").noconvert(), py::arg("dist").noconvert(), py::arg("out").noconvert(),
      py::arg("n_jobs") = 0,
      "out[q, j] = min over q's neighbours e of neighbor_dist[e] + dist[neighbor_index[e], j].");
#ifdef ISOGAN_WITH_CUDA
  bind_paths_cuda<T>(m);
#endif
}

}  // namespace

void bind_paths(py::module_& m) {
  bind_paths_for<float>(m);
  bind_paths_for<double>(m);
  // The defaults of the GPU thresholds that only large inputs reach, for the Python callers (every build).
  m.attr("PATHS_FLAG_BUDGET_BYTES") = isogan::kShortestPathsFlagBudgetBytes;
  m.attr("MIN_PLUS_MAX_QUERIES_PER_LAUNCH") = isogan::kMinPlusMaxQueriesPerLaunch;
  m.def(
      "paths_shortest_paths_cuda_scratch_bytes",
      [](isogan::index_t n_nodes, isogan::index_t n_sources, isogan::index_t flag_budget_bytes) {
        check_flag_budget(flag_budget_bytes);
        return isogan::shortest_paths_cuda_scratch_bytes(n_nodes, n_sources, flag_budget_bytes);
      },
      py::arg("n_nodes"), py::arg("n_sources"), py::arg("flag_budget_bytes") = isogan::kShortestPathsFlagBudgetBytes,
      "Device scratch bytes of one batched GPU shortest-path call (besides its output); in every build.");
}
