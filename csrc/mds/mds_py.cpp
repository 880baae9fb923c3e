// Bindings of mds/: products with the implicit centred kernel, row means, the symmetry check.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "common/bindings.h"
#include "common/common.h"
#include "common/py_arrays.h"
#include "mds/mds.h"

namespace py = pybind11;
using isogan::bindings::carray;
using isogan::bindings::check_shape;
using isogan::bindings::Dtype;
using isogan::bindings::run_without_gil;

namespace {

template <typename T>
void mds_check_square(const carray<T>& dist) {
  check_shape(dist, "dist_matrix", {-1, -1});
  if (dist.shape(0) != dist.shape(1)) {
    throw std::invalid_argument("dist_matrix must be square, got shape (" + std::to_string(dist.shape(0)) + ", " +
                                std::to_string(dist.shape(1)) + ")");
  }
}

template <typename T>
void bind_mds_host(py::module_& m) {
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
// Device-pointer twins: `dist` is the device address (int) of a C-contiguous (n_rows, n_cols) array
// whose element type `dtype` names; vector blocks are host float64 arrays; `stream` a cudaStream_t (int).
template <typename T>
void bind_mds_cuda(py::module_& m) {
  m.def(
      "mds_squared_matmul_cuda",
      [](std::uintptr_t dist, py::ssize_t n_rows, py::ssize_t n_cols, Dtype<T>, const carray<double>& w,
         std::uintptr_t stream) {
        check_shape(w, "w", {n_cols, -1});
        carray<double> y({n_rows, w.shape(1)});
        const double* w_data = w.data();
        double* y_data = y.mutable_data();
        const py::ssize_t n_vectors = w.shape(1);
        {
          py::gil_scoped_release release;
          isogan::squared_matmul_cuda<T>(reinterpret_cast<const T*>(dist), n_rows, n_cols, w_data, n_vectors, y_data,
                                         reinterpret_cast<void*>(stream));
        }
        return y;
      },
      py::arg("dist"), py::arg("n_rows"), py::arg("n_cols"), py::arg("dtype"), py::arg("w").noconvert(),
      py::arg("stream"), "mds_squared_matmul on a device dist (n_rows, n_cols); w and the result on the host.");
  m.def(
      "mds_centered_kernel_matmul_cuda",
      [](std::uintptr_t dist, py::ssize_t n, Dtype<T>, const carray<double>& v, std::uintptr_t stream) {
        check_shape(v, "v", {n, -1});
        carray<double> y({n, v.shape(1)});
        const double* v_data = v.data();
        double* y_data = y.mutable_data();
        const py::ssize_t n_vectors = v.shape(1);
        {
          py::gil_scoped_release release;
          isogan::centered_kernel_matmul_cuda<T>(reinterpret_cast<const T*>(dist), n, v_data, n_vectors, y_data,
                                                 reinterpret_cast<void*>(stream));
        }
        return y;
      },
      py::arg("dist"), py::arg("n"), py::arg("dtype"), py::arg("v").noconvert(), py::arg("stream"),
      "mds_centered_kernel_matmul on a device dist (n, n); v and the result on the host.");
  m.def(
      "mds_squared_row_means_cuda",
      [](std::uintptr_t dist, py::ssize_t n_rows, py::ssize_t n_cols, Dtype<T>, std::uintptr_t stream) {
        carray<double> row_means({n_rows});
        double* out = row_means.mutable_data();
        {
          py::gil_scoped_release release;
          isogan::squared_row_means_cuda<T>(reinterpret_cast<const T*>(dist), n_rows, n_cols, out,
                                            reinterpret_cast<void*>(stream));
        }
        return row_means;
      },
      py::arg("dist"), py::arg("n_rows"), py::arg("n_cols"), py::arg("dtype"), py::arg("stream"),
      "mds_squared_row_means on a device dist (n_rows, n_cols); the result on the host.");
  m.def(
      "mds_symmetry_report_cuda",
      [](std::uintptr_t dist, py::ssize_t n, Dtype<T>, std::uintptr_t stream) {
        const isogan::SymmetryReport report = [&] {
          py::gil_scoped_release release;
          return isogan::symmetry_report_cuda<T>(reinterpret_cast<const T*>(dist), n, reinterpret_cast<void*>(stream));
        }();
        return py::make_tuple(report.max_asymmetry, report.max_abs);
      },
      py::arg("dist"), py::arg("n"), py::arg("dtype"), py::arg("stream"),
      "mds_symmetry_report on a device dist (n, n).");
}

void bind_mds_device_matrix_copy(py::module_& m) {
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
}
#endif

template <typename T>
void bind_mds_for(py::module_& m) {
  bind_mds_host<T>(m);
#ifdef ISOGAN_WITH_CUDA
  bind_mds_cuda<T>(m);
#endif
}

}  // namespace

void bind_mds(py::module_& m) {
  bind_mds_for<float>(m);
  bind_mds_for<double>(m);
#ifdef ISOGAN_WITH_CUDA
  bind_mds_device_matrix_copy(m);
#endif
}
