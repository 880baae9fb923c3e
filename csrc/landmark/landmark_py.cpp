// Bindings of landmark/: MaxMin landmarks, triangulation, min-plus to the landmarks (CPU and CUDA).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/bindings.h"
#include "common/common.h"
#include "common/py_arrays.h"
#include "landmark/landmark.h"

namespace py = pybind11;
using isogan::bindings::carray;
using isogan::bindings::check_shape;
using isogan::bindings::Dtype;
using isogan::bindings::run_without_gil;

namespace {

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
// CUDA twins take device addresses (ints, from isogan._backend.arrays.device_array_view or a
// LandmarkDeviceBuffer), `dtype` naming the element type of the points and geodesic rows, and a stream
// handle; the Python side has checked shapes, dtypes and contiguity of the device arrays.
template <typename T>
void landmark_maxmin_cuda(std::uintptr_t points, isogan::index_t n_points, isogan::index_t n_features,
                          isogan::index_t n_landmarks, isogan::index_t first_landmark, std::uintptr_t landmark_index,
                          std::uintptr_t min_sq_distance, Dtype<T>, std::uintptr_t stream) {
  isogan::LandmarkMaxMinParams<T> params{reinterpret_cast<const T*>(points), n_points, n_features, n_landmarks,
                                         first_landmark, reinterpret_cast<isogan::index_t*>(landmark_index),
                                         reinterpret_cast<double*>(min_sq_distance)};
  py::gil_scoped_release release;
  isogan::maxmin_landmarks_cuda(params, reinterpret_cast<void*>(stream));
}

template <typename T>
void landmark_triangulate_cuda(std::uintptr_t landmark_geodesic, std::uintptr_t projection,
                               std::uintptr_t mean_sq_distance, isogan::index_t n_landmarks, isogan::index_t n_points,
                               isogan::index_t n_components, std::uintptr_t embedding, Dtype<T>,
                               std::uintptr_t stream) {
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
                            Dtype<T>, std::uintptr_t stream) {
  isogan::LandmarkMinPlusParams<T> params{reinterpret_cast<const T*>(landmark_geodesic),
                                          reinterpret_cast<const isogan::index_t*>(neighbor_index),
                                          reinterpret_cast<const T*>(neighbor_distance), n_landmarks, n_train,
                                          n_queries, n_neighbors, reinterpret_cast<T*>(query_geodesic)};
  py::gil_scoped_release release;
  isogan::landmark_min_plus_cuda(params, reinterpret_cast<void*>(stream));
}

void bind_landmark_device_buffer(py::module_& m) {
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
}
#endif

template <typename T>
void bind_landmark_for(py::module_& m) {
  m.def("landmark_maxmin", &landmark_maxmin<T>, py::arg("points").noconvert(), py::arg("n_landmarks"),
        py::arg("first_landmark"), py::arg("n_jobs"),
        "MaxMin landmarks in input space (Euclidean): (landmark_index (L,) int64, min_sq_distance (N,) float64).");
  m.def("landmark_triangulate", &landmark_triangulate<T>, py::arg("landmark_geodesic").noconvert(),
        py::arg("projection").noconvert(), py::arg("mean_sq_distance").noconvert(), py::arg("n_jobs"),
        "Distance-based triangulation: embedding (N, c) = sum_l projection[:, l] * (G[l]^2 - mean_sq_distance[l]).");
  m.def("landmark_min_plus", &landmark_min_plus<T>, py::arg("landmark_geodesic").noconvert(),
        py::arg("neighbor_index").noconvert(), py::arg("neighbor_distance").noconvert(), py::arg("n_jobs"),
        "Geodesic distances (L, M) from M new points to the landmarks: min_j (w[m, j] + G[l, index[m, j]]).");
#ifdef ISOGAN_WITH_CUDA
  m.def("landmark_maxmin_cuda", &landmark_maxmin_cuda<T>, py::arg("points"), py::arg("n_points"),
        py::arg("n_features"), py::arg("n_landmarks"), py::arg("first_landmark"), py::arg("landmark_index"),
        py::arg("min_sq_distance"), py::arg("dtype"), py::arg("stream"),
        "landmark_maxmin on device arrays: points (N, D) -> landmark_index (L,) int64, min_sq_distance (N,) "
        "float64, on `stream`.");
  m.def("landmark_triangulate_cuda", &landmark_triangulate_cuda<T>, py::arg("landmark_geodesic"),
        py::arg("projection"), py::arg("mean_sq_distance"), py::arg("n_landmarks"), py::arg("n_points"),
        py::arg("n_components"), py::arg("embedding"), py::arg("dtype"), py::arg("stream"),
        "landmark_triangulate on device arrays: landmark_geodesic (L, N), projection (c, L) float64, "
        "mean_sq_distance (L,) float64 -> embedding (N, c), on `stream`.");
  m.def("landmark_min_plus_cuda", &landmark_min_plus_cuda<T>, py::arg("landmark_geodesic"),
        py::arg("neighbor_index"), py::arg("neighbor_distance"), py::arg("n_landmarks"), py::arg("n_train"),
        py::arg("n_queries"), py::arg("n_neighbors"), py::arg("query_geodesic"), py::arg("dtype"), py::arg("stream"),
        "landmark_min_plus on device arrays: landmark_geodesic (L, n_train), neighbor_index (M, k) int64, "
        "neighbor_distance (M, k) -> query_geodesic (L, M), on `stream`.");
#endif
}

}  // namespace

void bind_landmark(py::module_& m) {
  bind_landmark_for<float>(m);
  bind_landmark_for<double>(m);
#ifdef ISOGAN_WITH_CUDA
  bind_landmark_device_buffer(m);
#endif
}
