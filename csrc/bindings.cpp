// The one pybind11 module, isogan._core. Native entry points take pre-validated, C-contiguous
// arrays (`.noconvert()`: a wrong dtype is a TypeError, never a hidden copy), check shapes once
// here, and run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/common.h"
#include "common/device.h"
#include "knn/knn.h"

namespace py = pybind11;

namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style>;

// Throws ValueError unless `array` has `ndim` dimensions and, where expected[i] >= 0, that extent.
template <typename T>
void check_shape(const carray<T>& array, const char* name, std::initializer_list<py::ssize_t> expected) {
  if (array.ndim() != static_cast<py::ssize_t>(expected.size())) {
    throw std::invalid_argument(std::string(name) + " must be " + std::to_string(expected.size()) +
                                "-D, got " + std::to_string(array.ndim()) + "-D");
  }
  py::ssize_t axis = 0;
  for (py::ssize_t extent : expected) {
    if (extent >= 0 && array.shape(axis) != extent) {
      throw std::invalid_argument(std::string(name) + " has extent " + std::to_string(array.shape(axis)) +
                                  " on axis " + std::to_string(axis) + ", expected " + std::to_string(extent));
    }
    ++axis;
  }
}

// A Cancellation whose poll re-takes the GIL and runs Python's signal handlers (Ctrl-C).
isogan::Cancellation python_cancellation() {
  return isogan::Cancellation([] {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
  });
}

// Runs `body(cancel)` with the GIL released; a fired Cancellation re-raises the pending Python error.
template <typename Body>
auto run_without_gil(Body&& body) {
  isogan::Cancellation cancel = python_cancellation();
  try {
    py::gil_scoped_release release;
    return body(cancel);
  } catch (const isogan::Cancelled&) {
    throw py::error_already_set();
  }
}

// ---------------------------------------------------------------- common
void bind_common(py::module_& m) {
  m.def("cuda_built", &isogan::cuda_built, "Whether this build contains the CUDA kernels.");
  m.def(
      "cuda_status",
      [] {
        const isogan::CudaStatus status = isogan::cuda_status();
        py::dict out;
        out["available"] = status.available;
        out["reason"] = status.reason;
        out["device_count"] = status.device_count;
        out["driver_version"] = status.driver_version;
        out["runtime_version"] = status.runtime_version;
        return out;
      },
      "Whether a CUDA device is usable now, and why not.");
  m.def(
      "cuda_memory_info",
      [] {
        std::size_t free_bytes = 0, total_bytes = 0;
        isogan::cuda_memory_info(&free_bytes, &total_bytes);
        return py::make_tuple(free_bytes, total_bytes);
      },
      "(free, total) bytes on the current CUDA device.");
  m.def("resolve_threads", &isogan::resolve_threads, py::arg("n_jobs"),
        "OpenMP threads used for n_jobs (joblib convention).");
}

// ---------------------------------------------------------------- knn
// Search parameters from the Python arguments; `queries`/`points` shapes checked here.
template <typename T>
isogan::knn::SearchParams knn_params(const carray<T>& queries, const carray<T>& points, int metric, double p,
                                     bool exclude_self, int n_jobs) {
  if (metric < 0 || metric > static_cast<int>(isogan::knn::Metric::Precomputed)) {
    throw std::invalid_argument("unknown metric code " + std::to_string(metric));
  }
  isogan::knn::SearchParams params;
  params.metric = static_cast<isogan::knn::Metric>(metric);
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

template <typename V>
carray<V> knn_to_numpy(const std::vector<V>& values) {
  carray<V> out(static_cast<py::ssize_t>(values.size()));
  std::copy(values.begin(), values.end(), out.mutable_data());
  return out;
}

template <typename T>
void bind_knn_dtype(py::module_& m) {
  m.def(
      "knn_kneighbors",
      [](const carray<T>& queries, const carray<T>& points, std::int64_t n_neighbors, int metric, double p,
         bool exclude_self, int n_jobs) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, n_jobs);
        const std::int64_t available = params.n_points - (exclude_self ? 1 : 0);
        if (n_neighbors < 1 || n_neighbors > available) {
          throw std::invalid_argument("n_neighbors = " + std::to_string(n_neighbors) + " must be in [1, " +
                                      std::to_string(available) + "]");
        }
        carray<T> distances({static_cast<py::ssize_t>(params.n_queries), static_cast<py::ssize_t>(n_neighbors)});
        carray<std::int64_t> indices({static_cast<py::ssize_t>(params.n_queries), static_cast<py::ssize_t>(n_neighbors)});
        const T* q = queries.data();
        const T* x = points.data();
        T* out_distances = distances.mutable_data();
        std::int64_t* out_indices = indices.mutable_data();
        run_without_gil([&](isogan::Cancellation& cancel) {
          isogan::knn::kneighbors_cpu<T>(q, x, params, n_neighbors, out_distances, out_indices, cancel);
        });
        return py::make_tuple(distances, indices);
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
        if (!(radius >= 0.0)) throw std::invalid_argument("radius must be >= 0, got " + std::to_string(radius));
        const T* q = queries.data();
        const T* x = points.data();
        auto result = run_without_gil([&](isogan::Cancellation& cancel) {
          return isogan::knn::radius_neighbors_cpu<T>(q, x, params, radius, cancel);
        });
        return py::make_tuple(knn_to_numpy(result.indptr), knn_to_numpy(result.indices),
                              knn_to_numpy(result.distances));
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("radius"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), py::arg("n_jobs"),
      "Points within radius (inclusive) of each query as CSR (indptr (M+1,), indices (nnz,), distances (nnz,)),\n"
      "columns increasing within a row.");
#ifdef ISOGAN_WITH_CUDA
  const char* dtype_name = sizeof(T) == 4 ? "float32" : "float64";
  // Device-pointer entry points: pointers and the stream are integers; shapes come from the caller.
  auto device_params = [](std::int64_t n_queries, std::int64_t n_points, std::int64_t n_features, int metric, double p,
                          bool exclude_self) {
    if (metric < 0 || metric > static_cast<int>(isogan::knn::Metric::Precomputed)) {
      throw std::invalid_argument("unknown metric code " + std::to_string(metric));
    }
    if (n_queries < 0 || n_points < 1 || n_features < 1) throw std::invalid_argument("empty or negative extents");
    isogan::knn::SearchParams params;
    params.n_queries = n_queries;
    params.n_points = n_points;
    params.n_features = n_features;
    params.metric = static_cast<isogan::knn::Metric>(metric);
    params.p = p;
    params.exclude_self = exclude_self;
    return params;
  };
  m.def(
      (std::string("knn_kneighbors_cuda_ptr_") + dtype_name).c_str(),
      [device_params](std::uintptr_t queries, std::uintptr_t points, std::int64_t n_queries, std::int64_t n_points,
                      std::int64_t n_features, std::int64_t n_neighbors, int metric, double p, bool exclude_self,
                      std::uintptr_t distances, std::uintptr_t indices, std::uintptr_t stream) {
        const auto params = device_params(n_queries, n_points, n_features, metric, p, exclude_self);
        if (n_neighbors < 1 || n_neighbors > n_points - (exclude_self ? 1 : 0)) {
          throw std::invalid_argument("n_neighbors out of range");
        }
        py::gil_scoped_release release;
        isogan::knn::kneighbors_cuda<T>(reinterpret_cast<const T*>(queries), reinterpret_cast<const T*>(points),
                                        params, n_neighbors, reinterpret_cast<T*>(distances),
                                        reinterpret_cast<std::int64_t*>(indices), stream);
      },
      py::arg("queries"), py::arg("points"), py::arg("n_queries"), py::arg("n_points"), py::arg("n_features"),
      py::arg("n_neighbors"), py::arg("metric"), py::arg("p"), py::arg("exclude_self"), py::arg("distances"),
      py::arg("indices"), py::arg("stream"),
      "kNN on device pointers: queries (M, D), points (N, D) -> distances (M, k), indices (M, k) int64, on `stream`.");
  m.def(
      (std::string("knn_radius_count_cuda_ptr_") + dtype_name).c_str(),
      [device_params](std::uintptr_t queries, std::uintptr_t points, std::int64_t n_queries, std::int64_t n_points,
                      std::int64_t n_features, double radius, int metric, double p, bool exclude_self,
                      std::uintptr_t indptr, std::uintptr_t stream) {
        const auto params = device_params(n_queries, n_points, n_features, metric, p, exclude_self);
        py::gil_scoped_release release;
        return isogan::knn::radius_count_cuda<T>(reinterpret_cast<const T*>(queries),
                                                 reinterpret_cast<const T*>(points), params, radius,
                                                 reinterpret_cast<std::int64_t*>(indptr), stream);
      },
      py::arg("queries"), py::arg("points"), py::arg("n_queries"), py::arg("n_points"), py::arg("n_features"),
      py::arg("radius"), py::arg("metric"), py::arg("p"), py::arg("exclude_self"), py::arg("indptr"),
      py::arg("stream"), "Radius pass 1 on device pointers: writes indptr (M+1,) int64, returns nnz.");
  m.def(
      (std::string("knn_radius_fill_cuda_ptr_") + dtype_name).c_str(),
      [device_params](std::uintptr_t queries, std::uintptr_t points, std::int64_t n_queries, std::int64_t n_points,
                      std::int64_t n_features, double radius, int metric, double p, bool exclude_self,
                      std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t distances, std::uintptr_t stream) {
        const auto params = device_params(n_queries, n_points, n_features, metric, p, exclude_self);
        py::gil_scoped_release release;
        isogan::knn::radius_fill_cuda<T>(reinterpret_cast<const T*>(queries), reinterpret_cast<const T*>(points),
                                         params, radius, reinterpret_cast<const std::int64_t*>(indptr),
                                         reinterpret_cast<std::int64_t*>(indices), reinterpret_cast<T*>(distances),
                                         stream);
      },
      py::arg("queries"), py::arg("points"), py::arg("n_queries"), py::arg("n_points"), py::arg("n_features"),
      py::arg("radius"), py::arg("metric"), py::arg("p"), py::arg("exclude_self"), py::arg("indptr"),
      py::arg("indices"), py::arg("distances"), py::arg("stream"),
      "Radius pass 2 on device pointers: fills indices and distances (nnz,) given indptr.");
  m.def(
      "knn_kneighbors_cuda",
      [](const carray<T>& queries, const carray<T>& points, std::int64_t n_neighbors, int metric, double p,
         bool exclude_self) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, 0);
        if (n_neighbors < 1 || n_neighbors > params.n_points - (exclude_self ? 1 : 0)) {
          throw std::invalid_argument("n_neighbors out of range");
        }
        carray<T> distances({static_cast<py::ssize_t>(params.n_queries), static_cast<py::ssize_t>(n_neighbors)});
        carray<std::int64_t> indices({static_cast<py::ssize_t>(params.n_queries), static_cast<py::ssize_t>(n_neighbors)});
        const T* q = queries.data();
        const T* x = points.data();
        T* out_distances = distances.mutable_data();
        std::int64_t* out_indices = indices.mutable_data();
        {
          py::gil_scoped_release release;
          isogan::knn::kneighbors_cuda_host<T>(q, x, params, n_neighbors, out_distances, out_indices);
        }
        return py::make_tuple(distances, indices);
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("n_neighbors"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), "knn_kneighbors on the GPU, host arrays in and out.");
  m.def(
      "knn_radius_cuda",
      [](const carray<T>& queries, const carray<T>& points, double radius, int metric, double p, bool exclude_self) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, 0);
        if (!(radius >= 0.0)) throw std::invalid_argument("radius must be >= 0, got " + std::to_string(radius));
        const T* q = queries.data();
        const T* x = points.data();
        auto result = [&] {
          py::gil_scoped_release release;
          return isogan::knn::radius_neighbors_cuda_host<T>(q, x, params, radius);
        }();
        return py::make_tuple(knn_to_numpy(result.indptr), knn_to_numpy(result.indices),
                              knn_to_numpy(result.distances));
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("radius"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), "knn_radius on the GPU, host arrays in and out.");
#endif
}

void bind_knn(py::module_& m) {
  bind_knn_dtype<float>(m);
  bind_knn_dtype<double>(m);
}

// ---------------------------------------------------------------- paths
void bind_paths(py::module_& m) { (void)m; }

// ---------------------------------------------------------------- mds
void bind_mds(py::module_& m) { (void)m; }

// ---------------------------------------------------------------- landmark
void bind_landmark(py::module_& m) { (void)m; }

// ---------------------------------------------------------------- ops
void bind_ops(py::module_& m) { (void)m; }

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "isogan native core: kNN graph, geodesic distances, MDS eigensolve, fused GAN ops.";
  bind_common(m);
  bind_knn(m);
  bind_paths(m);
  bind_mds(m);
  bind_landmark(m);
  bind_ops(m);
}
