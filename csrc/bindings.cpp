// The one pybind11 module, isogan._core. Native entry points take pre-validated, C-contiguous
// arrays (`.noconvert()`: a wrong dtype is a TypeError, never a hidden copy), check shapes once
// here, and run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/common.h"
#include "common/device.h"
#include "common/device_array.h"
#include "mds/landmark.h"
#include "ops/ops.h"
#include "ops/ops_isa.h"
#include "paths/paths.h"
#include "mds/mds.h"
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
// The numpy dtype of a DeviceArray element type; only the types the kernels read or write.
py::dtype device_array_dtype(const py::object& dtype) {
  const py::dtype resolved = py::dtype::from_args(dtype);
  const char kind = resolved.kind();
  const bool supported = (kind == 'f' && (resolved.itemsize() == 4 || resolved.itemsize() == 8)) ||
                         (kind == 'i' && (resolved.itemsize() == 4 || resolved.itemsize() == 8)) ||
                         (kind == 'u' && resolved.itemsize() == 1);
  const std::string typestr = py::str(resolved.attr("str")).cast<std::string>();
  if (!supported || typestr[0] == '>') {
    throw std::invalid_argument("DeviceArray supports native float32, float64, int32, int64 and uint8, got " +
                                typestr);
  }
  return resolved;
}

// The array interface type string, e.g. '<f4' ('|u1' for bytes).
std::string device_array_typestr(const py::dtype& dtype) { return py::str(dtype.attr("str")).cast<std::string>(); }

// Checks that `host` can exchange all bytes with `array`: C-contiguous, same dtype and shape.
void device_array_check_host(const isogan::DeviceArray& array, const py::array& host, const char* name) {
  if (!(host.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + " must be C-contiguous");
  const std::string host_typestr = device_array_typestr(host.dtype());
  std::vector<isogan::index_t> host_shape(host.shape(), host.shape() + host.ndim());
  if (host_typestr != array.typestr() || host_shape != array.shape()) {
    throw std::invalid_argument(std::string(name) + " must match the DeviceArray's shape and dtype (" +
                                array.typestr() + "), got " + host_typestr + " of another shape or type");
  }
}

py::tuple device_array_shape(const isogan::DeviceArray& array) {
  py::tuple shape(array.shape().size());
  for (std::size_t axis = 0; axis < array.shape().size(); ++axis) shape[axis] = array.shape()[axis];
  return shape;
}

void bind_device_array(py::module_& m) {
  py::class_<isogan::DeviceArray>(m, "DeviceArray", R"doc(An owning, C-contiguous array in GPU memory.

isogan's GPU stages write into it and read it in place; ``__cuda_array_interface__`` (version 3)
lets torch (``torch.as_tensor(a, device='cuda')``) and CuPy (``cupy.asarray(a)``) use it without
a copy (the consumer keeps it alive).

Parameters
----------
shape : sequence of int
    Extents.
dtype : numpy dtype or str
    float32, float64, int32, int64 or uint8.
stream : int, default=0
    CUDA stream handle (``cudaStream_t`` as an int) on which the allocation and its contents are
    ordered; 0 is the legacy default stream.

Raises
------
RuntimeError
    Without a usable CUDA device (the message says why), or if isogan was built without CUDA.
MemoryError
    When the device cannot hold the allocation.
)doc")
      .def(py::init([](const std::vector<isogan::index_t>& shape, const py::object& dtype, std::uintptr_t stream) {
             for (const isogan::index_t extent : shape) {
               if (extent < 0) throw std::invalid_argument("DeviceArray extents must be >= 0");
             }
             const py::dtype resolved = device_array_dtype(dtype);
             const std::string typestr = device_array_typestr(resolved);
             const std::size_t itemsize = static_cast<std::size_t>(resolved.itemsize());
             return std::make_unique<isogan::DeviceArray>(shape, itemsize, typestr, stream);
           }),
           py::arg("shape"), py::arg("dtype"), py::arg("stream") = 0)
      .def_static(
          "from_host",
          [](const py::array& host, std::uintptr_t stream) {
            if (!(host.flags() & py::array::c_style)) throw std::invalid_argument("host must be C-contiguous");
            const py::dtype resolved = device_array_dtype(host.dtype());
            std::vector<isogan::index_t> shape(host.shape(), host.shape() + host.ndim());
            auto array = std::make_unique<isogan::DeviceArray>(shape, static_cast<std::size_t>(resolved.itemsize()),
                                                               device_array_typestr(resolved), stream);
            const void* data = host.data();
            {
              py::gil_scoped_release release;
              array->copy_from_host(data);
            }
            return array;
          },
          py::arg("host"), py::arg("stream") = 0,
          "A new DeviceArray holding a copy of the C-contiguous numpy array ``host``.")
      .def_property_readonly("shape", &device_array_shape, "Extents (tuple of int).")
      .def_property_readonly("ndim", [](const isogan::DeviceArray& array) { return array.shape().size(); },
                             "Number of dimensions.")
      .def_property_readonly("size", &isogan::DeviceArray::size, "Number of elements.")
      .def_property_readonly("dtype", [](const isogan::DeviceArray& array) { return py::dtype(array.typestr()); },
                             "Element type (numpy.dtype).")
      .def_property_readonly("nbytes", &isogan::DeviceArray::nbytes, "Bytes of device memory held.")
      .def_property_readonly("stream", &isogan::DeviceArray::stream,
                             "CUDA stream handle the contents are ordered on (0 = legacy default).")
      .def_property_readonly("device", &isogan::DeviceArray::device, "CUDA device ordinal of the allocation.")
      .def_property_readonly(
          "pointer", [](const isogan::DeviceArray& array) { return reinterpret_cast<std::uintptr_t>(array.data()); },
          "Device address of the first element.")
      .def_property_readonly(
          "__cuda_array_interface__",
          [](const isogan::DeviceArray& array) {
            py::dict interface;
            interface["shape"] = device_array_shape(array);
            interface["typestr"] = array.typestr();
            interface["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(array.data()), false);
            interface["strides"] = py::none();
            interface["version"] = 3;
            // Version 3: 1 names the legacy default stream (0 is disallowed).
            interface["stream"] = array.stream() == 0 ? std::uintptr_t{1} : array.stream();
            return interface;
          },
          "The CUDA Array Interface (version 3) describing this array.")
      .def(
          "copy_to",
          [](const isogan::DeviceArray& array, py::array& out) {
            device_array_check_host(array, out, "out");
            if (!out.writeable()) throw std::invalid_argument("out must be writeable");
            void* data = out.mutable_data();
            py::gil_scoped_release release;
            array.copy_to_host(data);
          },
          py::arg("out").noconvert(),
          "Copy all elements into the C-contiguous numpy array ``out`` of the same shape and dtype "
          "(waits for the array's stream).")
      .def(
          "to_host",
          [](const isogan::DeviceArray& array) {
            std::vector<py::ssize_t> shape(array.shape().begin(), array.shape().end());
            py::array out(py::dtype(array.typestr()), shape);
            void* data = out.mutable_data();
            {
              py::gil_scoped_release release;
              array.copy_to_host(data);
            }
            return out;
          },
          "A new numpy array holding a copy of the contents (waits for the array's stream).")
      .def("__len__",
           [](const isogan::DeviceArray& array) {
             if (array.shape().empty()) throw py::type_error("len() of a 0-d DeviceArray");
             return array.shape()[0];
           })
      .def("__repr__", [](const isogan::DeviceArray& array) {
        return "DeviceArray(shape=" + py::repr(device_array_shape(array)).cast<std::string>() + ", dtype=" +
               py::str(py::dtype(array.typestr())).cast<std::string>() + ", device=" +
               std::to_string(array.device()) + ")";
      });
}

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
  py::register_exception<isogan::DeviceMemoryError>(m, "DeviceMemoryError", PyExc_MemoryError);
  bind_device_array(m);
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

// Throws unless 1 <= n_neighbors <= the points a query may return (itself excluded when params.exclude_self).
void check_n_neighbors(const isogan::knn::SearchParams& params, std::int64_t n_neighbors) {
  const std::int64_t available = params.n_points - (params.exclude_self ? 1 : 0);
  if (n_neighbors < 1 || n_neighbors > available) {
    throw std::invalid_argument("n_neighbors = " + std::to_string(n_neighbors) + " must be in [1, " +
                                std::to_string(available) + "]");
  }
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
py::tuple knn_kneighbors_arrays(const carray<T>& queries, const carray<T>& points,
                                const isogan::knn::SearchParams& params, std::int64_t n_neighbors, Search search) {
  carray<T> distances({static_cast<py::ssize_t>(params.n_queries), static_cast<py::ssize_t>(n_neighbors)});
  carray<std::int64_t> indices({static_cast<py::ssize_t>(params.n_queries), static_cast<py::ssize_t>(n_neighbors)});
  const T* q = queries.data();
  const T* x = points.data();
  T* out_distances = distances.mutable_data();
  std::int64_t* out_indices = indices.mutable_data();
  run_without_gil([&](isogan::Cancellation& cancel) { search(q, x, out_distances, out_indices, cancel); });
  return py::make_tuple(distances, indices);
}

template <typename T>
void bind_knn_dtype(py::module_& m) {
  m.def(
      "knn_kneighbors",
      [](const carray<T>& queries, const carray<T>& points, std::int64_t n_neighbors, int metric, double p,
         bool exclude_self, int n_jobs) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, n_jobs);
        check_n_neighbors(params, n_neighbors);
        return knn_kneighbors_arrays(queries, points, params, n_neighbors,
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
  m.def(
      "knn_kneighbors_kdtree",
      [](const carray<T>& queries, const carray<T>& points, std::int64_t n_neighbors, int metric, double p,
         bool exclude_self, int n_jobs, std::int64_t leaf_size) {
        const isogan::knn::SearchParams params = knn_params(queries, points, metric, p, exclude_self, n_jobs);
        check_kdtree_params(params, leaf_size);
        check_n_neighbors(params, n_neighbors);
        return knn_kneighbors_arrays(queries, points, params, n_neighbors,
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
        if (!(radius >= 0.0)) throw std::invalid_argument("radius must be >= 0, got " + std::to_string(radius));
        if (params.n_points < 1 || params.n_features < 1) {
          throw std::invalid_argument("the kd-tree needs at least one point and one feature");
        }
        const T* q = queries.data();
        const T* x = points.data();
        auto result = run_without_gil([&](isogan::Cancellation& cancel) {
          return isogan::knn::radius_neighbors_kdtree_cpu<T>(q, x, params, radius, leaf_size, cancel);
        });
        return py::make_tuple(knn_to_numpy(result.indptr), knn_to_numpy(result.indices),
                              knn_to_numpy(result.distances));
      },
      py::arg("queries").noconvert(), py::arg("points").noconvert(), py::arg("radius"), py::arg("metric"),
      py::arg("p"), py::arg("exclude_self"), py::arg("n_jobs"), py::arg("leaf_size") = 16,
      "knn_radius through a kd-tree over points (N, D): CSR (indptr, indices, distances), columns increasing.");
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

// ---------------------------------------------------------------- paths
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

#ifdef ISOGAN_WITH_CUDA
// NumPy in, NumPy out: the CUDA side stages through device buffers.
template <typename T>
void bind_paths_cuda_dtype(py::module_& m) {
  m.def(
      "paths_min_plus_cuda_host",
      [](const carray<std::int64_t>& query_indptr, const carray<std::int64_t>& neighbor_index,
         const carray<T>& neighbor_dist, const carray<T>& dist, carray<T>& out) {
        isogan::MinPlusParams<T> params = min_plus_params(query_indptr, neighbor_index, neighbor_dist, dist, out);
        for (isogan::index_t e = 0; e < neighbor_index.shape(0); ++e) {
          if (params.neighbor_index[e] < 0 || params.neighbor_index[e] >= params.n_nodes) {
            throw std::invalid_argument("neighbor index out of range");
          }
        }
        py::gil_scoped_release release;
        isogan::min_plus_cuda_host(params);
      },
      py::arg("query_indptr").noconvert(), py::arg("neighbor_index").noconvert(),
      py::arg("neighbor_dist").noconvert(), py::arg("dist").noconvert(), py::arg("out").noconvert(),
      "The transform min-plus product on the GPU from host arrays.");
}

// Device-pointer entry points (torch/CuPy memory, the caller's stream); `dtype` is 'float32' or
// 'float64'. Pointers are trusted: the Python layer derives them from validated GPU arrays.
template <typename Body>
void dispatch_float(const std::string& dtype, Body&& body) {
  if (dtype == "float32") {
    body(float{});
  } else if (dtype == "float64") {
    body(double{});
  } else {
    throw std::invalid_argument("dtype must be 'float32' or 'float64', got '" + dtype + "'");
  }
}

void bind_paths_cuda_pointers(py::module_& m) {
  m.def(
      "paths_shortest_paths_cuda",
      [](std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t weights, isogan::index_t n_nodes,
         isogan::index_t nnz, std::uintptr_t sources, isogan::index_t n_sources, std::uintptr_t out,
         const std::string& dtype, std::uintptr_t stream) {
        dispatch_float(dtype, [&](auto zero) {
          using T = decltype(zero);
          const isogan::CsrGraphView<T> graph{n_nodes, reinterpret_cast<const std::int64_t*>(indptr),
                                              reinterpret_cast<const std::int32_t*>(indices),
                                              reinterpret_cast<const T*>(weights)};
          py::gil_scoped_release release;
          isogan::shortest_paths_cuda(graph, nnz, reinterpret_cast<const std::int64_t*>(sources), n_sources,
                                      reinterpret_cast<T*>(out), stream);
        });
      },
      py::arg("indptr"), py::arg("indices"), py::arg("weights"), py::arg("n_nodes"), py::arg("nnz"),
      py::arg("sources"), py::arg("n_sources"), py::arg("out"), py::arg("dtype"), py::arg("stream"),
      "Batched shortest paths on device pointers (symmetric CSR graph) into out (n_sources, n_nodes).");
  m.def(
      "paths_floyd_warshall_cuda",
      [](std::uintptr_t dist, isogan::index_t n, const std::string& dtype, std::uintptr_t stream,
         bool from_dense_graph) {
        dispatch_float(dtype, [&](auto zero) {
          using T = decltype(zero);
          py::gil_scoped_release release;
          if (from_dense_graph) isogan::dense_graph_to_floyd_start_cuda(reinterpret_cast<T*>(dist), n, stream);
          isogan::floyd_warshall_cuda(reinterpret_cast<T*>(dist), n, stream);
        });
      },
      py::arg("dist"), py::arg("n"), py::arg("dtype"), py::arg("stream"), py::arg("from_dense_graph") = false,
      "Blocked Floyd-Warshall in place on a device (n, n) matrix; from_dense_graph first turns an "
      "adjacency matrix (0 = no edge) into the start matrix.");
  m.def(
      "paths_csr_floyd_start_cuda",
      [](std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t weights, isogan::index_t n_nodes,
         std::uintptr_t dist, const std::string& dtype, std::uintptr_t stream) {
        dispatch_float(dtype, [&](auto zero) {
          using T = decltype(zero);
          const isogan::CsrGraphView<T> graph{n_nodes, reinterpret_cast<const std::int64_t*>(indptr),
                                              reinterpret_cast<const std::int32_t*>(indices),
                                              reinterpret_cast<const T*>(weights)};
          py::gil_scoped_release release;
          isogan::csr_to_floyd_start_cuda(graph, reinterpret_cast<T*>(dist), stream);
        });
      },
      py::arg("indptr"), py::arg("indices"), py::arg("weights"), py::arg("n_nodes"), py::arg("dist"),
      py::arg("dtype"), py::arg("stream"),
      "Floyd-Warshall start matrix (n_nodes, n_nodes) of a symmetric device CSR graph: +inf, 0 diagonal, edges.");
  m.def(
      "paths_min_plus_cuda",
      [](std::uintptr_t query_indptr, std::uintptr_t neighbor_index, std::uintptr_t neighbor_dist,
         std::uintptr_t dist, isogan::index_t n_queries, isogan::index_t n_nodes, std::uintptr_t out,
         const std::string& dtype, std::uintptr_t stream) {
        dispatch_float(dtype, [&](auto zero) {
          using T = decltype(zero);
          isogan::MinPlusParams<T> params;
          params.n_queries = n_queries;
          params.n_nodes = n_nodes;
          params.query_indptr = reinterpret_cast<const std::int64_t*>(query_indptr);
          params.neighbor_index = reinterpret_cast<const std::int64_t*>(neighbor_index);
          params.neighbor_dist = reinterpret_cast<const T*>(neighbor_dist);
          params.dist = reinterpret_cast<const T*>(dist);
          params.out = reinterpret_cast<T*>(out);
          py::gil_scoped_release release;
          isogan::min_plus_cuda(params, stream);
        });
      },
      py::arg("query_indptr"), py::arg("neighbor_index"), py::arg("neighbor_dist"), py::arg("dist"),
      py::arg("n_queries"), py::arg("n_nodes"), py::arg("out"), py::arg("dtype"), py::arg("stream"),
      "The transform min-plus product on device pointers.");
}
#endif

template <typename T>
void bind_paths_dtype(py::module_& m) {
  m.def(
      "paths_symmetrize",
      [](const carray<std::int64_t>& indptr, const carray<std::int32_t>& indices, const carray<T>& weights) {
        const isogan::CsrGraphView<T> view = graph_view(indptr, indices, weights);
        isogan::SymmetricCsr<T> graph;
        {
          py::gil_scoped_release release;
          graph = isogan::symmetrize_csr(view.n_nodes, view.indptr, view.indices, view.weights);
        }
        carray<std::int64_t> out_indptr(static_cast<py::ssize_t>(graph.indptr.size()));
        carray<std::int32_t> out_indices(static_cast<py::ssize_t>(graph.indices.size()));
        carray<T> out_weights(static_cast<py::ssize_t>(graph.weights.size()));
        std::copy(graph.indptr.begin(), graph.indptr.end(), out_indptr.mutable_data());
        std::copy(graph.indices.begin(), graph.indices.end(), out_indices.mutable_data());
        std::copy(graph.weights.begin(), graph.weights.end(), out_weights.mutable_data());
        return py::make_tuple(out_indptr, out_indices, out_weights);
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
          check_shape(*column_order, "column_order", {static_cast<py::ssize_t>(graph.n_nodes)});
          order_data = column_order->data();
          std::vector<bool> seen(static_cast<std::size_t>(graph.n_nodes), false);
          for (isogan::index_t v = 0; v < graph.n_nodes; ++v) {
            const std::int64_t node = order_data[v];
            if (node < 0 || node >= graph.n_nodes || seen[node]) {
              throw std::invalid_argument("column_order must be a permutation of range(n_nodes)");
            }
            seen[node] = true;
          }
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
        check_shape(order, "order", {n_nodes});
        check_shape(out, "out", {n_nodes, n_nodes});
        if (start < 0 || stop < start || stop > n_nodes) {
          throw std::invalid_argument("need 0 <= start <= stop <= n_nodes, got start=" + std::to_string(start) +
                                      ", stop=" + std::to_string(stop));
        }
        std::vector<bool> seen(static_cast<std::size_t>(n_nodes), false);
        for (py::ssize_t p = 0; p < n_nodes; ++p) {
          const std::int64_t node = order.data()[p];
          if (node < 0 || node >= n_nodes || seen[node]) throw std::invalid_argument("order must be a permutation of range(n_nodes)");
          seen[node] = true;
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
  bind_paths_cuda_dtype<T>(m);
#endif
}

void bind_paths(py::module_& m) {
  bind_paths_dtype<float>(m);
  bind_paths_dtype<double>(m);
  m.def("paths_shortest_paths_cuda_scratch_bytes", &isogan::shortest_paths_cuda_scratch_bytes,
        py::arg("n_nodes"), py::arg("n_sources"),
        "Device scratch bytes of one batched GPU shortest-path call (besides its output); in every build.");
#ifdef ISOGAN_WITH_CUDA
  bind_paths_cuda_pointers(m);
#endif
}

// ---------------------------------------------------------------- mds
template <typename T>
void mds_check_square(const carray<T>& dist) {
  check_shape(dist, "dist_matrix", {-1, -1});
  if (dist.shape(0) != dist.shape(1)) {
    throw std::invalid_argument("dist_matrix must be square, got shape (" + std::to_string(dist.shape(0)) + ", " +
                                std::to_string(dist.shape(1)) + ")");
  }
}

template <typename T>
void bind_mds_dtype(py::module_& m) {
  m.def(
      "mds_squared_matmul",
      [](const carray<T>& dist, const carray<double>& w, int n_jobs) {
        check_shape(dist, "dist", {-1, -1});
        check_shape(w, "w", {dist.shape(1), -1});
        carray<double> y({dist.shape(0), w.shape(1)});
        const T* dist_data = dist.data();
        const double* w_data = w.data();
        double* y_data = y.mutable_data();
        const int n_threads = isogan::resolve_threads(n_jobs);
        run_without_gil([&](isogan::Cancellation& cancel) {
          isogan::squared_matmul_cpu<T>(dist_data, dist.shape(0), dist.shape(1), w_data, w.shape(1), y_data,
                                        n_threads, cancel);
        });
        return y;
      },
      py::arg("dist").noconvert(), py::arg("w").noconvert(), py::arg("n_jobs") = 0,
      "-1/2 (dist o dist) @ w for dist (M, N) and w (N, b) float64; returns (M, b) float64.");
  m.def(
      "mds_centered_kernel_matmul",
      [](const carray<T>& dist, const carray<double>& v, int n_jobs) {
        mds_check_square(dist);
        check_shape(v, "v", {dist.shape(0), -1});
        carray<double> y({v.shape(0), v.shape(1)});
        const T* dist_data = dist.data();
        const double* v_data = v.data();
        double* y_data = y.mutable_data();
        const int n_threads = isogan::resolve_threads(n_jobs);
        run_without_gil([&](isogan::Cancellation& cancel) {
          isogan::centered_kernel_matmul_cpu<T>(dist_data, dist.shape(0), v_data, v.shape(1), y_data, n_threads,
                                                cancel);
        });
        return y;
      },
      py::arg("dist").noconvert(), py::arg("v").noconvert(), py::arg("n_jobs") = 0,
      "K @ v with K = -1/2 J (dist o dist) J (never formed) for dist (N, N) and v (N, b) float64.");
  m.def(
      "mds_squared_row_means",
      [](const carray<T>& dist, int n_jobs) {
        check_shape(dist, "dist", {-1, -1});
        carray<double> row_means({dist.shape(0)});
        const T* dist_data = dist.data();
        double* out = row_means.mutable_data();
        const int n_threads = isogan::resolve_threads(n_jobs);
        run_without_gil([&](isogan::Cancellation& cancel) {
          isogan::squared_row_means_cpu<T>(dist_data, dist.shape(0), dist.shape(1), out, n_threads, cancel);
        });
        return row_means;
      },
      py::arg("dist").noconvert(), py::arg("n_jobs") = 0, "Row means of -1/2 (dist o dist), float64 (M,).");
  m.def(
      "mds_centered_kernel",
      [](const carray<T>& dist, int n_jobs) {
        mds_check_square(dist);
        carray<T> kernel({dist.shape(0), dist.shape(1)});
        const T* dist_data = dist.data();
        T* out = kernel.mutable_data();
        const int n_threads = isogan::resolve_threads(n_jobs);
        run_without_gil([&](isogan::Cancellation& cancel) {
          isogan::centered_kernel_cpu<T>(dist_data, dist.shape(0), out, n_threads, cancel);
        });
        return kernel;
      },
      py::arg("dist").noconvert(), py::arg("n_jobs") = 0,
      "The centred kernel -1/2 J (dist o dist) J as a new (N, N) array of dist's dtype.");
  m.def(
      "mds_symmetry_report",
      [](const carray<T>& dist, int n_jobs) {
        mds_check_square(dist);
        const T* dist_data = dist.data();
        const int n_threads = isogan::resolve_threads(n_jobs);
        const isogan::SymmetryReport report = run_without_gil([&](isogan::Cancellation& cancel) {
          return isogan::symmetry_report_cpu<T>(dist_data, dist.shape(0), n_threads, cancel);
        });
        return py::make_tuple(report.max_asymmetry, report.max_abs);
      },
      py::arg("dist").noconvert(), py::arg("n_jobs") = 0, "(max |dist - dist.T|, max |dist|).");
}

#ifdef ISOGAN_WITH_CUDA
// Device-pointer twins: `dist` is a device address (int) of a C-contiguous (n_rows, n_cols) array of
// `dtype` ('float32' or 'float64'); vector blocks are host float64 arrays; `stream` a cudaStream_t (int).
template <typename Call>
auto mds_dispatch_cuda_dtype(const std::string& dtype, Call&& call) {
  if (dtype == "float32") return call(static_cast<float*>(nullptr));
  if (dtype == "float64") return call(static_cast<double*>(nullptr));
  throw std::invalid_argument("dist dtype must be 'float32' or 'float64', got '" + dtype + "'");
}

void bind_mds_cuda(py::module_& m) {
  py::class_<isogan::DeviceMatrixCopy>(m, "MdsDeviceMatrixCopy",
                                       "A GPU copy of a host (n_rows, n_cols) float32/float64 matrix.")
      .def(py::init([](const py::array& host) {
             if (!(host.flags() & py::array::c_style)) {
               throw std::invalid_argument("the matrix to copy must be C-contiguous");
             }
             const void* data = host.data();
             const std::size_t n_bytes = static_cast<std::size_t>(host.nbytes());
             py::gil_scoped_release release;
             return std::make_unique<isogan::DeviceMatrixCopy>(data, n_bytes);
           }),
           py::arg("host"))
      .def_property_readonly("pointer", [](const isogan::DeviceMatrixCopy& copy) {
        return reinterpret_cast<std::uintptr_t>(copy.data());
      });
  m.def(
      "mds_squared_matmul_cuda",
      [](std::uintptr_t dist, py::ssize_t n_rows, py::ssize_t n_cols, const std::string& dtype,
         const carray<double>& w, std::uintptr_t stream) {
        check_shape(w, "w", {n_cols, -1});
        carray<double> y({n_rows, w.shape(1)});
        const double* w_data = w.data();
        double* y_data = y.mutable_data();
        mds_dispatch_cuda_dtype(dtype, [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          py::gil_scoped_release release;
          isogan::squared_matmul_cuda<T>(reinterpret_cast<const T*>(dist), n_rows, n_cols, w_data, w.shape(1),
                                         y_data, reinterpret_cast<void*>(stream));
          return 0;
        });
        return y;
      },
      py::arg("dist"), py::arg("n_rows"), py::arg("n_cols"), py::arg("dtype"), py::arg("w").noconvert(),
      py::arg("stream"));
  m.def(
      "mds_centered_kernel_matmul_cuda",
      [](std::uintptr_t dist, py::ssize_t n, const std::string& dtype, const carray<double>& v,
         std::uintptr_t stream) {
        check_shape(v, "v", {n, -1});
        carray<double> y({n, v.shape(1)});
        const double* v_data = v.data();
        double* y_data = y.mutable_data();
        mds_dispatch_cuda_dtype(dtype, [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          py::gil_scoped_release release;
          isogan::centered_kernel_matmul_cuda<T>(reinterpret_cast<const T*>(dist), n, v_data, v.shape(1), y_data,
                                                 reinterpret_cast<void*>(stream));
          return 0;
        });
        return y;
      },
      py::arg("dist"), py::arg("n"), py::arg("dtype"), py::arg("v").noconvert(), py::arg("stream"));
  m.def(
      "mds_squared_row_means_cuda",
      [](std::uintptr_t dist, py::ssize_t n_rows, py::ssize_t n_cols, const std::string& dtype,
         std::uintptr_t stream) {
        carray<double> row_means({n_rows});
        double* out = row_means.mutable_data();
        mds_dispatch_cuda_dtype(dtype, [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          py::gil_scoped_release release;
          isogan::squared_row_means_cuda<T>(reinterpret_cast<const T*>(dist), n_rows, n_cols, out,
                                            reinterpret_cast<void*>(stream));
          return 0;
        });
        return row_means;
      },
      py::arg("dist"), py::arg("n_rows"), py::arg("n_cols"), py::arg("dtype"), py::arg("stream"));
  m.def(
      "mds_symmetry_report_cuda",
      [](std::uintptr_t dist, py::ssize_t n, const std::string& dtype, std::uintptr_t stream) {
        const isogan::SymmetryReport report = mds_dispatch_cuda_dtype(dtype, [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          py::gil_scoped_release release;
          return isogan::symmetry_report_cuda<T>(reinterpret_cast<const T*>(dist), n, reinterpret_cast<void*>(stream));
        });
        return py::make_tuple(report.max_asymmetry, report.max_abs);
      },
      py::arg("dist"), py::arg("n"), py::arg("dtype"), py::arg("stream"));
}
#endif

void bind_mds(py::module_& m) {
  bind_mds_dtype<float>(m);
  bind_mds_dtype<double>(m);
#ifdef ISOGAN_WITH_CUDA
  bind_mds_cuda(m);
#endif
}

// ---------------------------------------------------------------- landmark
template <typename T>
py::tuple landmark_maxmin(const carray<T>& points, isogan::index_t n_landmarks, isogan::index_t first_landmark,
                          int n_jobs) {
  check_shape(points, "points", {-1, -1});
  const isogan::index_t n_points = points.shape(0);
  if (n_landmarks < 1 || n_landmarks > n_points) {
    throw std::invalid_argument("n_landmarks must be in [1, " + std::to_string(n_points) + "], got " +
                                std::to_string(n_landmarks));
  }
  if (first_landmark < 0 || first_landmark >= n_points) {
    throw std::invalid_argument("first_landmark must be in [0, " + std::to_string(n_points) + "), got " +
                                std::to_string(first_landmark));
  }
  carray<isogan::index_t> landmark_index({static_cast<py::ssize_t>(n_landmarks)});
  carray<double> min_sq_distance({static_cast<py::ssize_t>(n_points)});
  isogan::LandmarkMaxMinParams<T> params{points.data(),  n_points, points.shape(1), n_landmarks, first_landmark,
                                 landmark_index.mutable_data(), min_sq_distance.mutable_data()};
  const int n_threads = isogan::resolve_threads(n_jobs);
  run_without_gil([&](isogan::Cancellation& cancel) { isogan::maxmin_landmarks_cpu(params, n_threads, cancel); });
  return py::make_tuple(landmark_index, min_sq_distance);
}

template <typename T>
carray<T> landmark_triangulate(const carray<T>& landmark_geodesic, const carray<double>& projection,
                               const carray<double>& mean_sq_distance, int n_jobs) {
  check_shape(landmark_geodesic, "landmark_geodesic", {-1, -1});
  const py::ssize_t n_landmarks = landmark_geodesic.shape(0);
  check_shape(projection, "projection", {-1, n_landmarks});
  check_shape(mean_sq_distance, "mean_sq_distance", {n_landmarks});
  const py::ssize_t n_points = landmark_geodesic.shape(1);
  const py::ssize_t n_components = projection.shape(0);
  carray<T> embedding({n_points, n_components});
  isogan::LandmarkTriangulateParams<T> params{landmark_geodesic.data(), projection.data(), mean_sq_distance.data(),
                                      n_landmarks, n_points, n_components, embedding.mutable_data()};
  const int n_threads = isogan::resolve_threads(n_jobs);
  run_without_gil([&](isogan::Cancellation& cancel) { isogan::triangulate_cpu(params, n_threads, cancel); });
  return embedding;
}

template <typename T>
carray<T> landmark_min_plus(const carray<T>& landmark_geodesic, const carray<isogan::index_t>& neighbor_index,
                            const carray<T>& neighbor_distance, int n_jobs) {
  check_shape(landmark_geodesic, "landmark_geodesic", {-1, -1});
  check_shape(neighbor_index, "neighbor_index", {-1, -1});
  check_shape(neighbor_distance, "neighbor_distance", {neighbor_index.shape(0), neighbor_index.shape(1)});
  const py::ssize_t n_landmarks = landmark_geodesic.shape(0);
  const py::ssize_t n_queries = neighbor_index.shape(0);
  if (neighbor_index.shape(1) < 1) throw std::invalid_argument("neighbor_index needs at least one column");
  carray<T> query_geodesic({n_landmarks, n_queries});
  isogan::LandmarkMinPlusParams<T> params{landmark_geodesic.data(), neighbor_index.data(), neighbor_distance.data(),
                                  n_landmarks, landmark_geodesic.shape(1), n_queries, neighbor_index.shape(1),
                                  query_geodesic.mutable_data()};
  const int n_threads = isogan::resolve_threads(n_jobs);
  run_without_gil([&](isogan::Cancellation& cancel) { isogan::landmark_min_plus_cpu(params, n_threads, cancel); });
  return query_geodesic;
}

#ifdef ISOGAN_WITH_CUDA
// CUDA twins take device addresses (ints, from isogan._arrays.device_array_view) and a stream handle;
// the Python side has checked shapes, dtypes and contiguity of the device arrays.
template <typename T>
void landmark_maxmin_cuda(std::uintptr_t points, isogan::index_t n_points, isogan::index_t n_features,
                          isogan::index_t n_landmarks, isogan::index_t first_landmark, std::uintptr_t landmark_index,
                          std::uintptr_t min_sq_distance, std::uintptr_t stream) {
  isogan::LandmarkMaxMinParams<T> params{reinterpret_cast<const T*>(points), n_points, n_features, n_landmarks, first_landmark,
                                 reinterpret_cast<isogan::index_t*>(landmark_index),
                                 reinterpret_cast<double*>(min_sq_distance)};
  py::gil_scoped_release release;
  isogan::maxmin_landmarks_cuda(params, reinterpret_cast<void*>(stream));
}

template <typename T>
void landmark_triangulate_cuda(std::uintptr_t landmark_geodesic, std::uintptr_t projection,
                               std::uintptr_t mean_sq_distance, isogan::index_t n_landmarks, isogan::index_t n_points,
                               isogan::index_t n_components, std::uintptr_t embedding, std::uintptr_t stream) {
  isogan::LandmarkTriangulateParams<T> params{reinterpret_cast<const T*>(landmark_geodesic),
                                      reinterpret_cast<const double*>(projection),
                                      reinterpret_cast<const double*>(mean_sq_distance), n_landmarks, n_points,
                                      n_components, reinterpret_cast<T*>(embedding)};
  py::gil_scoped_release release;
  isogan::triangulate_cuda(params, reinterpret_cast<void*>(stream));
}

template <typename T>
void landmark_min_plus_cuda(std::uintptr_t landmark_geodesic, std::uintptr_t neighbor_index,
                            std::uintptr_t neighbor_distance, isogan::index_t n_landmarks, isogan::index_t n_train,
                            isogan::index_t n_queries, isogan::index_t n_neighbors, std::uintptr_t query_geodesic,
                            std::uintptr_t stream) {
  isogan::LandmarkMinPlusParams<T> params{reinterpret_cast<const T*>(landmark_geodesic),
                                  reinterpret_cast<const isogan::index_t*>(neighbor_index),
                                  reinterpret_cast<const T*>(neighbor_distance), n_landmarks, n_train, n_queries,
                                  n_neighbors, reinterpret_cast<T*>(query_geodesic)};
  py::gil_scoped_release release;
  isogan::landmark_min_plus_cuda(params, reinterpret_cast<void*>(stream));
}

// Binds the float32 and float64 instantiations of one CUDA entry as name_f32 / name_f64.
template <typename F32, typename F64>
void def_cuda_pair(py::module_& m, const std::string& name, F32 f32, F64 f64, const char* doc) {
  m.def((name + "_f32").c_str(), f32, doc);
  m.def((name + "_f64").c_str(), f64, doc);
}
#endif

void bind_landmark(py::module_& m) {
#ifdef ISOGAN_WITH_CUDA
  using isogan::LandmarkDeviceBuffer;
  // Checks that `host` is C-contiguous and that its bytes fit in the buffer from `offset` on.
  auto check_span = [](const LandmarkDeviceBuffer& buffer, const py::array& host, std::size_t offset) {
    if (!(host.flags() & py::array::c_style)) throw std::invalid_argument("the host array must be C-contiguous");
    const std::size_t n_bytes = static_cast<std::size_t>(host.nbytes());
    if (offset > buffer.size() || n_bytes > buffer.size() - offset) {
      throw std::invalid_argument("copy of " + std::to_string(n_bytes) + " bytes at offset " + std::to_string(offset) +
                                  " overruns a device buffer of " + std::to_string(buffer.size()) + " bytes");
    }
    return n_bytes;
  };
  py::class_<LandmarkDeviceBuffer>(m, "LandmarkDeviceBuffer",
                                   "A device allocation of the GPU landmark pipeline (legacy default stream); "
                                   "MemoryError when the device cannot hold it.")
      .def(py::init<std::size_t>(), py::arg("n_bytes"))
      .def_property_readonly("pointer",
                             [](const LandmarkDeviceBuffer& buffer) {
                               return reinterpret_cast<std::uintptr_t>(buffer.data());
                             })
      .def_property_readonly("nbytes", &LandmarkDeviceBuffer::size)
      .def(
          "upload",
          [check_span](LandmarkDeviceBuffer& buffer, const py::array& host, std::size_t offset) {
            const std::size_t n_bytes = check_span(buffer, host, offset);
            const void* data = host.data();
            py::gil_scoped_release release;
            buffer.upload(data, offset, n_bytes);
          },
          py::arg("host"), py::arg("offset") = 0, "Copy a C-contiguous host array to bytes [offset, ...).")
      .def(
          "download",
          [check_span](const LandmarkDeviceBuffer& buffer, py::array& host, std::size_t offset) {
            if (!host.writeable()) throw std::invalid_argument("the host array must be writeable");
            const std::size_t n_bytes = check_span(buffer, host, offset);
            void* data = host.mutable_data();
            py::gil_scoped_release release;
            buffer.download(data, offset, n_bytes);
          },
          py::arg("host"), py::arg("offset") = 0, "Fill a C-contiguous host array from bytes [offset, ...).");
  def_cuda_pair(m, "landmark_maxmin_cuda", &landmark_maxmin_cuda<float>, &landmark_maxmin_cuda<double>,
                "MaxMin on device arrays: (points, n_points, n_features, n_landmarks, first_landmark, "
                "landmark_index, min_sq_distance, stream).");
  def_cuda_pair(m, "landmark_triangulate_cuda", &landmark_triangulate_cuda<float>, &landmark_triangulate_cuda<double>,
                "Triangulation on device arrays: (landmark_geodesic, projection, mean_sq_distance, n_landmarks, "
                "n_points, n_components, embedding, stream).");
  def_cuda_pair(m, "landmark_min_plus_cuda", &landmark_min_plus_cuda<float>, &landmark_min_plus_cuda<double>,
                "Min-plus to landmarks on device arrays: (landmark_geodesic, neighbor_index, neighbor_distance, "
                "n_landmarks, n_train, n_queries, n_neighbors, query_geodesic, stream).");
#endif
  const char* maxmin_doc =
      "MaxMin landmarks in input space (Euclidean): (landmark_index (L,) int64, min_sq_distance (N,) float64).";
  m.def("landmark_maxmin", &landmark_maxmin<float>, py::arg("points").noconvert(), py::arg("n_landmarks"),
        py::arg("first_landmark"), py::arg("n_jobs"), maxmin_doc);
  m.def("landmark_maxmin", &landmark_maxmin<double>, py::arg("points").noconvert(), py::arg("n_landmarks"),
        py::arg("first_landmark"), py::arg("n_jobs"), maxmin_doc);
  const char* triangulate_doc =
      "Distance-based triangulation: embedding (N, c) = sum_l projection[:, l] * (G[l]^2 - mean_sq_distance[l]).";
  m.def("landmark_triangulate", &landmark_triangulate<float>, py::arg("landmark_geodesic").noconvert(),
        py::arg("projection").noconvert(), py::arg("mean_sq_distance").noconvert(), py::arg("n_jobs"),
        triangulate_doc);
  m.def("landmark_triangulate", &landmark_triangulate<double>, py::arg("landmark_geodesic").noconvert(),
        py::arg("projection").noconvert(), py::arg("mean_sq_distance").noconvert(), py::arg("n_jobs"),
        triangulate_doc);
  const char* min_plus_doc =
      "Geodesic distances (L, M) from M new points to the landmarks: min_j (w[m, j] + G[l, index[m, j]]).";
  m.def("landmark_min_plus", &landmark_min_plus<float>, py::arg("landmark_geodesic").noconvert(),
        py::arg("neighbor_index").noconvert(), py::arg("neighbor_distance").noconvert(), py::arg("n_jobs"),
        min_plus_doc);
  m.def("landmark_min_plus", &landmark_min_plus<double>, py::arg("landmark_geodesic").noconvert(),
        py::arg("neighbor_index").noconvert(), py::arg("neighbor_distance").noconvert(), py::arg("n_jobs"),
        min_plus_doc);
}

// ---------------------------------------------------------------- ops
// The fused GAN ops take raw addresses from torch tensors (isogan/ops/*.py validates dtype, shape,
// device and contiguity); these wrappers check the scalar arguments once and release the GIL.
isogan::ops::ScalarType ops_dtype(int code, bool cuda) {
  if (code < 0 || code > (cuda ? 3 : 1)) {
    throw std::invalid_argument("unsupported dtype code " + std::to_string(code) + (cuda ? " for CUDA" : " for the CPU"));
  }
  return static_cast<isogan::ops::ScalarType>(code);
}

template <typename Pointer = void*>
Pointer ops_pointer(std::uintptr_t address, const char* name, bool required = true) {
  if (required && address == 0) throw std::invalid_argument(std::string(name) + " must not be a null pointer");
  return reinterpret_cast<Pointer>(address);
}

isogan::ops::BiasActParams ops_bias_act_params(std::uintptr_t x, std::uintptr_t bias, std::uintptr_t grad,
                                               std::uintptr_t out, isogan::index_t outer, isogan::index_t channels,
                                               isogan::index_t inner, int act, double alpha, double gain,
                                               double clamp, int order) {
  if (outer < 0 || channels <= 0 || inner <= 0) {
    throw std::invalid_argument("bias_act: outer must be >= 0 and channels, inner > 0");
  }
  if (act < 0 || act >= isogan::ops::kActivationCount) {
    throw std::invalid_argument("bias_act: unknown activation code " + std::to_string(act));
  }
  if (order < 0 || order > 2) throw std::invalid_argument("bias_act: order must be 0, 1 or 2");
  isogan::ops::BiasActParams p;
  p.x = ops_pointer<const void*>(x, "x");
  p.bias = ops_pointer<const void*>(bias, "bias", false);
  p.grad = ops_pointer<const void*>(grad, "grad", order > 0);
  p.out = ops_pointer(out, "out");
  p.outer = outer;
  p.channels = channels;
  p.inner = inner;
  p.act = static_cast<isogan::ops::Activation>(act);
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  p.order = order;
  return p;
}

isogan::ops::GanLossParams ops_gan_loss_params(std::uintptr_t logits, std::uintptr_t grad, std::uintptr_t out,
                                               isogan::index_t n, bool real) {
  if (n <= 0) throw std::invalid_argument("gan_loss: needs at least one logit");
  isogan::ops::GanLossParams p;
  p.logits = ops_pointer<const void*>(logits, "logits");
  p.grad = ops_pointer<const void*>(grad, "grad", false);
  p.out = ops_pointer(out, "out");
  p.n = n;
  p.real = real;
  return p;
}

isogan::ops::AdamParams ops_adam_params(const std::vector<std::uintptr_t>& params,
                                        const std::vector<std::uintptr_t>& grads,
                                        const std::vector<std::uintptr_t>& exp_avgs,
                                        const std::vector<std::uintptr_t>& exp_avg_sqs,
                                        const std::vector<isogan::index_t>& sizes,
                                        const std::vector<double>& step_sizes,
                                        const std::vector<double>& bias_correction2_sqrts, double one_minus_beta1,
                                        double beta2, double one_minus_beta2, double eps, double weight_decay) {
  const std::size_t count = params.size();
  if (grads.size() != count || exp_avgs.size() != count || exp_avg_sqs.size() != count || sizes.size() != count ||
      step_sizes.size() != count || bias_correction2_sqrts.size() != count) {
    throw std::invalid_argument("adam: every per-tensor list must have one entry per parameter");
  }
  isogan::ops::AdamParams p;
  for (std::size_t t = 0; t < count; ++t) {
    if (sizes[t] < 0) throw std::invalid_argument("adam: negative tensor size");
    const bool required = sizes[t] > 0;
    p.params.push_back(ops_pointer(params[t], "param", required));
    p.grads.push_back(ops_pointer<const void*>(grads[t], "grad", required));
    p.exp_avgs.push_back(ops_pointer(exp_avgs[t], "exp_avg", required));
    p.exp_avg_sqs.push_back(ops_pointer(exp_avg_sqs[t], "exp_avg_sq", required));
  }
  p.sizes = sizes;
  p.step_sizes = step_sizes;
  p.bias_correction2_sqrts = bias_correction2_sqrts;
  p.one_minus_beta1 = one_minus_beta1;
  p.beta2 = beta2;
  p.one_minus_beta2 = one_minus_beta2;
  p.eps = eps;
  p.weight_decay = weight_decay;
  return p;
}

void bind_ops(py::module_& m) {
  static constexpr const char* kCpuVariantNames[] = {"baseline", "avx2", "avx512"};
  m.def(
      "ops_cpu_variant", [] { return kCpuVariantNames[static_cast<int>(isogan::ops::active_cpu_variant())]; },
      "Instruction-set variant the bias_act/gan_loss CPU kernels run: 'baseline', 'avx2' or 'avx512'.");
  m.def(
      "ops_best_cpu_variant", [] { return kCpuVariantNames[static_cast<int>(isogan::ops::best_cpu_variant())]; },
      "Widest instruction-set variant of the CPU kernels that this CPU executes.");
  m.def(
      "ops_set_cpu_variant",
      [](const std::string& name) {
        for (int code = 0; code < 3; ++code) {
          if (name == kCpuVariantNames[code]) {
            isogan::ops::set_cpu_variant(static_cast<isogan::ops::CpuVariant>(code));
            return;
          }
        }
        throw std::invalid_argument("variant must be 'baseline', 'avx2' or 'avx512', got '" + name + "'");
      },
      py::arg("name"), "Run the CPU kernels with a narrower variant from now on (for tests and benchmarks).");
  m.def("_ops_grid_stride_fits_uint32", &isogan::ops::grid_stride_fits_uint32, py::arg("n"), py::arg("total_threads"),
        "Testing aid: whether the CUDA elementwise loops may index n elements in uint32 with that many threads.");
  m.def(
      "ops_bias_act_cpu",
      [](std::uintptr_t x, std::uintptr_t bias, std::uintptr_t grad, std::uintptr_t out, isogan::index_t outer,
         isogan::index_t channels, isogan::index_t inner, int dtype, int act, double alpha, double gain, double clamp,
         int order) {
        const auto p = ops_bias_act_params(x, bias, grad, out, outer, channels, inner, act, alpha, gain, clamp, order);
        const auto scalar_type = ops_dtype(dtype, false);
        py::gil_scoped_release release;
        isogan::ops::bias_act_cpu(p, scalar_type);
      },
      py::arg("x"), py::arg("bias"), py::arg("grad"), py::arg("out"), py::arg("outer"), py::arg("channels"),
      py::arg("inner"), py::arg("dtype"), py::arg("act"), py::arg("alpha"), py::arg("gain"), py::arg("clamp"),
      py::arg("order"),
      "Fused bias + activation (order 0) or its derivative times grad (order 1, 2) on CPU buffers.");
  m.def(
      "ops_gan_loss_cpu",
      [](std::uintptr_t logits, std::uintptr_t grad, std::uintptr_t out, isogan::index_t n, int dtype, bool real) {
        const auto p = ops_gan_loss_params(logits, grad, out, n, real);
        const auto scalar_type = ops_dtype(dtype, false);
        py::gil_scoped_release release;
        isogan::ops::gan_loss_cpu(p, scalar_type);
      },
      py::arg("logits"), py::arg("grad"), py::arg("out"), py::arg("n"), py::arg("dtype"), py::arg("real"),
      "Logistic GAN loss (grad == 0) or its gradient on CPU buffers.");
  m.def(
      "ops_adam_cpu",
      [](const std::vector<std::uintptr_t>& params, const std::vector<std::uintptr_t>& grads,
         const std::vector<std::uintptr_t>& exp_avgs, const std::vector<std::uintptr_t>& exp_avg_sqs,
         const std::vector<isogan::index_t>& sizes, const std::vector<double>& step_sizes,
         const std::vector<double>& bias_correction2_sqrts, int dtype, double one_minus_beta1, double beta2,
         double one_minus_beta2, double eps, double weight_decay) {
        const auto p = ops_adam_params(params, grads, exp_avgs, exp_avg_sqs, sizes, step_sizes,
                                       bias_correction2_sqrts, one_minus_beta1, beta2, one_minus_beta2, eps,
                                       weight_decay);
        const auto scalar_type = ops_dtype(dtype, false);
        if (scalar_type != isogan::ops::ScalarType::float32 && scalar_type != isogan::ops::ScalarType::float64) {
          throw std::invalid_argument("adam: float32 or float64 parameters only");
        }
        py::gil_scoped_release release;
        isogan::ops::adam_cpu(p, scalar_type);
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("sizes"),
      py::arg("step_sizes"), py::arg("bias_correction2_sqrts"), py::arg("dtype"), py::arg("one_minus_beta1"),
      py::arg("beta2"), py::arg("one_minus_beta2"), py::arg("eps"), py::arg("weight_decay"),
      "One Adam step over many CPU tensors (multi-tensor apply).");
#ifdef ISOGAN_WITH_CUDA
  m.def(
      "ops_bias_act_cuda",
      [](std::uintptr_t x, std::uintptr_t bias, std::uintptr_t grad, std::uintptr_t out, isogan::index_t outer,
         isogan::index_t channels, isogan::index_t inner, int dtype, int act, double alpha, double gain, double clamp,
         int order, int device, std::uintptr_t stream) {
        const auto p = ops_bias_act_params(x, bias, grad, out, outer, channels, inner, act, alpha, gain, clamp, order);
        const auto scalar_type = ops_dtype(dtype, true);
        py::gil_scoped_release release;
        isogan::ops::bias_act_cuda(p, scalar_type, device, stream);
      },
      py::arg("x"), py::arg("bias"), py::arg("grad"), py::arg("out"), py::arg("outer"), py::arg("channels"),
      py::arg("inner"), py::arg("dtype"), py::arg("act"), py::arg("alpha"), py::arg("gain"), py::arg("clamp"),
      py::arg("order"), py::arg("device"), py::arg("stream"),
      "CUDA twin of ops_bias_act_cpu, asynchronous on `stream`.");
  m.def("ops_gan_loss_cuda_partials", &isogan::ops::gan_loss_cuda_partials,
        "Length of the float64 scratch buffer the CUDA gan_loss forward needs.");
  m.def(
      "ops_gan_loss_cuda",
      [](std::uintptr_t logits, std::uintptr_t grad, std::uintptr_t out, isogan::index_t n, int dtype, bool real,
         std::uintptr_t partials, int device, std::uintptr_t stream) {
        const auto p = ops_gan_loss_params(logits, grad, out, n, real);
        const auto scalar_type = ops_dtype(dtype, true);
        double* scratch = ops_pointer<double*>(partials, "partials", grad == 0);
        py::gil_scoped_release release;
        isogan::ops::gan_loss_cuda(p, scalar_type, scratch, device, stream);
      },
      py::arg("logits"), py::arg("grad"), py::arg("out"), py::arg("n"), py::arg("dtype"), py::arg("real"),
      py::arg("partials"), py::arg("device"), py::arg("stream"),
      "CUDA twin of ops_gan_loss_cpu, asynchronous on `stream`.");
  m.def(
      "ops_adam_cuda",
      [](const std::vector<std::uintptr_t>& params, const std::vector<std::uintptr_t>& grads,
         const std::vector<std::uintptr_t>& exp_avgs, const std::vector<std::uintptr_t>& exp_avg_sqs,
         const std::vector<isogan::index_t>& sizes, const std::vector<double>& step_sizes,
         const std::vector<double>& bias_correction2_sqrts, int dtype, double one_minus_beta1, double beta2,
         double one_minus_beta2, double eps, double weight_decay, int device, std::uintptr_t stream) {
        const auto p = ops_adam_params(params, grads, exp_avgs, exp_avg_sqs, sizes, step_sizes,
                                       bias_correction2_sqrts, one_minus_beta1, beta2, one_minus_beta2, eps,
                                       weight_decay);
        const auto scalar_type = ops_dtype(dtype, true);
        if (scalar_type != isogan::ops::ScalarType::float32 && scalar_type != isogan::ops::ScalarType::float64) {
          throw std::invalid_argument("adam: float32 or float64 parameters only");
        }
        py::gil_scoped_release release;
        isogan::ops::adam_cuda(p, scalar_type, device, stream);
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("sizes"),
      py::arg("step_sizes"), py::arg("bias_correction2_sqrts"), py::arg("dtype"), py::arg("one_minus_beta1"),
      py::arg("beta2"), py::arg("one_minus_beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("device"),
      py::arg("stream"), "CUDA twin of ops_adam_cpu: one launch per 32 tensors, asynchronous on `stream`.");
#endif
}

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
