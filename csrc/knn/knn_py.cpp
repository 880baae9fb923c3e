// Bindings of knn/: exact k-nearest and radius neighbours (brute force, kd-tree, CUDA).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/bindings.h"
#include "common/common.h"
#include "common/py_arrays.h"
#include "knn/knn.h"

namespace py = pybind11;
using isogan::bindings::carray;
using isogan::bindings::check_shape;
using isogan::bindings::Dtype;
using isogan::bindings::run_without_gil;
using isogan::bindings::vector_to_numpy;

namespace {

// The Metric of a code from isogan.knn (csrc/knn/knn.h), or ValueError.
isogan::knn::Metric metric_from_code(int metric) {
  if (metric < 0 || metric > static_cast<int>(isogan::knn::Metric::Precomputed)) {
    throw std::invalid_argument("unknown metric code " + std::to_string(metric));
  }
  return static_cast<isogan::knn::Metric>(metric);
}

// Search parameters from the Python arguments; `queries`/`points` shapes checked here.
template <typename T>
isogan::knn::SearchParams knn_params(const carray<T>& queries, const carray<T>& points, int metric, double p,
                                     bool exclude_self, int n_jobs) {
  isogan::knn::SearchParams params;
  params.metric = metric_from_code(metric);
  params.p = p;
  params.exclude_self = exclude_self;
  params.n_jobs = n_jobs;
  check_shape(queries, "queries", {-1, -1});
  params.n_queries = queries.shape(0);
  if (params.metric == isogan::knn::Metric::Precomputed) {
    params.n_points = queries.shape(1);
    params.n_features = queries.shape(1);
  } else {
    check_shape(points, "points", {-1, queries.shape(1)});
    params.n_points = points.shape(0);
    params.n_features = points.shape(1);
  }
  if (params.metric == isogan::knn::Metric::Minkowski && !(p >= 1.0)) {
    throw std::invalid_argument("p must be >= 1 for the Minkowski metric, got " + std::to_string(p));
  }
  if (exclude_self && params.n_queries != params.n_points) {
    throw std::invalid_argument("exclude_self needs the queries to be the fit points");
  }
  return params;
}

// Throws unless 1 <= n_neighbors <= the points a query may return (itself excluded when params.exclude_self).
void check_n_neighbors(const isogan::knn::SearchParams& params, std::int64_t n_neighbors) {
  const std::int64_t available = params.n_points - (params.exclude_self ? 1 : 0);
  if (n_neighbors < 1 || n_neighbors > available) {
    throw std::invalid_argument("n_neighbors = " + std::to_string(n_neighbors) + " must be in [1, " +
                                std::to_string(available) + "]");
  }
}

void check_radius(double radius) {
  if (!(radius >= 0.0)) throw std::invalid_argument("radius must be >= 0, got " + std::to_string(radius));
}

// Throws unless the kd-tree can serve params: points, not precomputed distances, and leaf_size >= 1.
void check_kdtree_params(const isogan::knn::SearchParams& params, std::int64_t leaf_size) {
  if (params.metric == isogan::knn::Metric::Precomputed) {
    throw std::invalid_argument("the kd-tree search needs points, not a precomputed distance matrix");
  }
  if (leaf_size < 1) throw std::invalid_argument("leaf_size must be >= 1, got " + std::to_string(leaf_size));
}

// Runs search(queries, points, out_distances, out_indices, cancel) without the GIL into new arrays and returns
// (distances (M, k), indices (M, k) int64).
template <typename T, typename Search>
py::tuple kneighbors_arrays(const carray<T>& queries, const carray<T>& points, const isogan::knn::SearchParams& params,
                            std::int64_t n_neighbors, Search search) {
  carray<T> distances({static_cast<py::ssize_t>(params.n_queries), static_cast<py::ssize_t>(n_neighbors)});
  carray<std::int64_t> indices({static_cast<py::ssize_t>(params.n_queries), static_cast<py::ssize_t>(n_neighbors)});
  const T* q = queries.data();
  const T* x = points.data();
  T* out_distances = distances.mutable_data();
  std::int64_t* out_indices = indices.mutable_data();
  run_without_gil([&](isogan::Cancellation& cancel) { search(q, x, out_distances, out_indices, cancel); });
  return py::make_tuple(distances, indices);
}

// Runs search(queries, points, cancel) -> RadiusResult<T> without the GIL; returns (indptr, indices, distances).
template <typename T, typename Search>
py::tuple radius_arrays(const carray<T>& queries, const carray<T>& points, Search search) {
  const T* q = queries.data();
  const T* x = points.data();
  const isogan::knn::RadiusResult<T> result =
      run_without_gil([&](isogan::Cancellation& cancel) { return search(q, x, cancel); });
  return py::make_tuple(vector_to_numpy(result.indptr), vector_to_numpy(result.indices),
                        vector_to_numpy(result.distances));
}

#ifdef ISOGAN_WITH_CUDA
// Search parameters of a device-pointer call, whose shapes come from the caller.
isogan::knn::SearchParams device_params(std::int64_t n_queries, std::int64_t n_points, std::int64_t n_features,
                                        int metric, double p, bool exclude_self) {
  if (n_queries < 0 || n_points < 1 || n_features < 1) throw std::invalid_argument("empty or negative extents");
  isogan::knn::SearchParams params;
  params.n_queries = n_queries;
  params.n_points = n_points;
  params.n_features = n_features;
  params.metric = metric_from_code(metric);
  params.p = p;
  params.exclude_self = exclude_self;
  return params;
}

// Device-pointer entry points: addresses and the stream are integers, `dtype` names the element type
// of queries, points and distances.
template <typename T>
void bind_knn_cuda(py::module_& m) {
  m.def(
      "knn_kneighbors_cuda",
      [](std::uintptr_t queries, std::uintptr_t points, std::int64_t n_queries, std::int64_t n_points,
         std::int64_t n_features, std::int64_t n_neighbors, int metric, double p, bool exclude_self,
         std::uintptr_t distances, std::uintptr_t indices, Dtype<T>, std::uintptr_t stream) {
        const auto params = device_params(n_queries, n_points, n_features, metric, p, exclude_self);
        check_n_neighbors(params, n_neighbors);
        py::gil_scoped_release release;
        isogan::knn::kneighbors_cuda<T>(reinterpret_cast<const T*>(queries), reinterpret_cast<const T*>(points),
                                        params, n_neighbors, reinterpret_cast<T*>(distances),
                                        reinterpret_cast<std::int64_t*>(indices), stream);
      },
      py::arg("queries"), py::arg("points"), py::arg("n_queries"), py::arg("n_points"), py::arg("n_features"),
      py::arg("n_neighbors"), py::arg("metric"), py::arg("p"), py::arg("exclude_self"), py::arg("distances"),
      py::arg("indices"), py::arg("dtype"), py::arg("stream"),
      "kNN on device pointers: queries (M, D), points (N, D) -> distances (M, k), indices (M, k) int64, on `stream`.");
  m.def(
      "knn_radius_count_cuda",
      [](std::uintptr_t queries, std::uintptr_t points, std::int64_t n_queries, std::int64_t n_points,
         std::int64_t n_features, double radius, int metric, double p, bool exclude_self, std::uintptr_t indptr,
         Dtype<T>, std::uintptr_t stream) {
        const auto params = device_params(n_queries, n_points, n_features, metric, p, exclude_self);
        py::gil_scoped_release release;
        return isogan::knn::radius_count_cuda<T>(reinterpret_cast<const T*>(queries),
                                                 reinterpret_cast<const T*>(points), params, radius,
                                                 reinterpret_cast<std::int64_t*>(indptr), stream);
      },
      py::arg("queries"), py::arg("points"), py::arg("n_queries"), py::arg("n_points"), py::arg("n_features"),
      py::arg("radius"), py::arg("metric"), py::arg("p"), py::arg("exclude_self"), py::arg("indptr"),
      py::arg("dtype"), py::arg("stream"), "Radius pass 1 on device pointers: writes indptr (M+1,) int64, returns nnz.");
  m.def(
      "knn_radius_fill_cuda",
      [](std::uintptr_t queries, std::uintptr_t points, std::int64_t n_queries, std::int64_t n_points,
         std::int64_t n_features, double radius, int metric, double p, bool exclude_self, std::uintptr_t indptr,
         std::uintptr_t indices, std::uintptr_t distances, Dtype<T>, std::uintptr_t stream) {
        const auto params = device_params(n_queries, n_points, n_features, metric, p, exclude_self);
        py::gil_scoped_release release;
        isogan::knn::radius_fill_cuda<T>(reinterpret_cast<const T*>(queries), reinterpret_cast<const T*>(points),
                                         params, radius, reinterpret_cast<const std::int64_t*>(indptr),
                                         reinterpret_cast<std::int64_t*>(indices), reinterpret_cast<T*>(distances),
                                         stream);
      },
      py::arg("queries"), py::arg("points"), py::arg("n_queries"), py::arg("n_points"), py::arg("n_features"),
      py::arg("radius"), py::arg("metric"), py::arg("p"), py::arg("exclude_self"), py::arg("indptr"),
      py::arg("indices"), py::arg("distances"), py::arg("dtype"), py::arg("stream"),
      "Radius pass 2 on device pointers: fills indices and distances (nnz,) given indptr.");
  m.def(
      "knn_kneighbors_cuda_host",
      [](const carray<T>& queries, const carray<T>& points, std::int64_t n_neighbors, int metric, double p,
         bool exclude_self) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, 0);
        check_n_neighbors(params, n_neighbors);
        return kneighbors_arrays(queries, points, params, n_neighbors,
                                 [&](const T* q, const T* x, T* out_distances, std::int64_t* out_indices,
                                     isogan::Cancellation&) {
                                   isogan::knn::kneighbors_cuda_host<T>(q, x, params, n_neighbors, out_distances,
                                                                        out_indices);
                                 });
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("n_neighbors"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), "knn_kneighbors on the GPU, host arrays in and out.");
  m.def(
      "knn_radius_cuda_host",
      [](const carray<T>& queries, const carray<T>& points, double radius, int metric, double p, bool exclude_self) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, 0);
        check_radius(radius);
        return radius_arrays(queries, points, [&](const T* q, const T* x, isogan::Cancellation&) {
          return isogan::knn::radius_neighbors_cuda_host<T>(q, x, params, radius);
        });
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("radius"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), "knn_radius on the GPU, host arrays in and out.");
}
#endif

template <typename T>
void bind_knn_for(py::module_& m) {
  m.def(
      "knn_kneighbors",
      [](const carray<T>& queries, const carray<T>& points, std::int64_t n_neighbors, int metric, double p,
         bool exclude_self, int n_jobs) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, n_jobs);
        check_n_neighbors(params, n_neighbors);
        return kneighbors_arrays(queries, points, params, n_neighbors,
                                 [&](const T* q, const T* x, T* out_distances, std::int64_t* out_indices,
                                     isogan::Cancellation& cancel) {
                                   isogan::knn::kneighbors_cpu<T>(q, x, params, n_neighbors, out_distances,
                                                                  out_indices, cancel);
                                 });
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("n_neighbors"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), py::arg("n_jobs"),
      "k nearest points of each query: (distances (M, k), indices (M, k) int64), sorted by (distance, index).\n"
      "queries: (M, D) (precomputed: (M, N) distances); points: (N, D).");
  m.def(
      "knn_radius",
      [](const carray<T>& queries, const carray<T>& points, double radius, int metric, double p, bool exclude_self,
         int n_jobs) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, n_jobs);
        check_radius(radius);
        return radius_arrays(queries, points, [&](const T* q, const T* x, isogan::Cancellation& cancel) {
          return isogan::knn::radius_neighbors_cpu<T>(q, x, params, radius, cancel);
        });
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("radius"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), py::arg("n_jobs"),
      "Points within radius (inclusive) of each query as CSR (indptr (M+1,), indices (nnz,), distances (nnz,)),\n"
      "columns increasing within a row.");
  m.def(
      "knn_kneighbors_kdtree",
      [](const carray<T>& queries, const carray<T>& points, std::int64_t n_neighbors, int metric, double p,
         bool exclude_self, int n_jobs, std::int64_t leaf_size) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, n_jobs);
        check_kdtree_params(params, leaf_size);
        check_n_neighbors(params, n_neighbors);
        return kneighbors_arrays(queries, points, params, n_neighbors,
                                 [&](const T* q, const T* x, T* out_distances, std::int64_t* out_indices,
                                     isogan::Cancellation& cancel) {
                                   isogan::knn::kneighbors_kdtree_cpu<T>(q, x, params, n_neighbors, leaf_size,
                                                                         out_distances, out_indices, cancel);
                                 });
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("n_neighbors"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), py::arg("n_jobs"), py::arg("leaf_size") = 16,
      "knn_kneighbors through a kd-tree over points (N, D), the same result bit for bit; queries (M, D).");
  m.def(
      "knn_radius_kdtree",
      [](const carray<T>& queries, const carray<T>& points, double radius, int metric, double p, bool exclude_self,
         int n_jobs, std::int64_t leaf_size) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, n_jobs);
        check_kdtree_params(params, leaf_size);
        check_radius(radius);
        if (params.n_points < 1 || params.n_features < 1) {
          throw std::invalid_argument("the kd-tree needs at least one point and one feature");
        }
        return radius_arrays(queries, points, [&](const T* q, const T* x, isogan::Cancellation& cancel) {
          return isogan::knn::radius_neighbors_kdtree_cpu<T>(q, x, params, radius, leaf_size, cancel);
        });
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("radius"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), py::arg("n_jobs"), py::arg("leaf_size") = 16,
      "knn_radius through a kd-tree over points (N, D): CSR (indptr, indices, distances), columns increasing.");
  m.def(
      "knn_kneighbors_among",
      [](const carray<T>& queries, const carray<T>& points, const carray<std::int64_t>& candidates,
         std::int64_t n_neighbors, int metric, double p, bool exclude_self, int n_jobs) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, n_jobs);
        if (params.metric == isogan::knn::Metric::Precomputed) {
          throw std::invalid_argument("re-ranking candidates needs points, not a precomputed distance matrix");
        }
        check_shape(candidates, "candidates", {params.n_queries, -1});
        const std::int64_t n_candidates = candidates.shape(1);
        if (n_neighbors < 1 || n_neighbors > n_candidates) {
          throw std::invalid_argument("n_neighbors = " + std::to_string(n_neighbors) + " must be in [1, " +
                                      std::to_string(n_candidates) + "] (the candidates per query)");
        }
        const std::int64_t* c = candidates.data();
        return kneighbors_arrays(queries, points, params, n_neighbors,
                                 [&](const T* q, const T* x, T* out_distances, std::int64_t* out_indices,
                                     isogan::Cancellation& cancel) {
                                   isogan::knn::kneighbors_among_cpu<T>(q, x, params, c, n_candidates, n_neighbors,
                                                                        out_distances, out_indices, cancel);
                                 });
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("candidates").noconvert(),
      py::arg("n_neighbors"), py::arg("metric"), py::arg("p"), py::arg("exclude_self"), py::arg("n_jobs"),
      "k nearest of each query among its candidates (M, w) int64, ranked exactly as knn_kneighbors ranks:\n"
      "(distances (M, k), indices (M, k) int64); queries (M, D), points (N, D); repeated candidates count once.");
#ifdef ISOGAN_WITH_CUDA
  bind_knn_cuda<T>(m);
#endif
}

}  // namespace

void bind_knn(py::module_& m) {
  bind_knn_for<float>(m);
  bind_knn_for<double>(m);
  m.def(
      "knn_kdtree_bytes",
      [](std::int64_t n_points, std::int64_t n_features, std::int64_t value_size, std::int64_t leaf_size) {
        if (n_points < 1 || n_features < 1 || value_size < 1 || leaf_size < 1) {
          throw std::invalid_argument("kdtree_bytes needs positive extents");
        }
        return isogan::knn::kdtree_bytes(n_points, n_features, value_size, leaf_size);
      },
      py::arg("n_points"), py::arg("n_features"), py::arg("value_size"), py::arg("leaf_size") = 16,
      "Bytes a kd-tree over (n_points, n_features) values of value_size bytes holds while a search runs.");
}
