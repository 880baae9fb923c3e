// The one pybind11 module, isogan._core. Native entry points take pre-validated, C-contiguous
// arrays (`.noconvert()`: a wrong dtype is a TypeError, never a hidden copy), check shapes once
// here, and run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "common/common.h"
#include "common/device.h"
#include "mds/mds.h"

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
void bind_knn(py::module_& m) { (void)m; }

// ---------------------------------------------------------------- paths
void bind_paths(py::module_& m) { (void)m; }

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
