// The one pybind11 module, isogan._core. Native entry points take pre-validated, C-contiguous
// arrays (`.noconvert()`: a wrong dtype is a TypeError, never a hidden copy), check shapes once
// here, and run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/common.h"
#include "common/device.h"

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
