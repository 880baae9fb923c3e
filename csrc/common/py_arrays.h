// The binding side of every stage, written once: C-contiguous numpy arrays, shape checks that
// raise ValueError, and the GIL release with Ctrl-C polling around a native call. Native entry
// points take their arrays with `.noconvert()`, so a wrong dtype is a TypeError, never a hidden copy.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <stdexcept>
#include <string>

#include "common/common.h"

namespace isogan::bindings {

namespace py = pybind11;

// A C-contiguous numpy array of T; with `.noconvert()` no other layout or dtype binds.
template <typename T>
using carray = py::array_t<T, py::array::c_style>;

// Throws ValueError unless `array` has `ndim` dimensions and, where expected[i] >= 0, that extent.
template <typename T>
void check_shape(const carray<T>& array, const char* name, std::initializer_list<py::ssize_t> expected) {
  if (array.ndim() != static_cast<py::ssize_t>(expected.size())) {
    throw std::invalid_argument(std::string(name) + " must be " + std::to_string(expected.size()) + "-D, got " +
                                std::to_string(array.ndim()) + "-D");
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
inline Cancellation python_cancellation() {
  return Cancellation([] {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
  });
}

// Runs `body(cancel)` with the GIL released; a fired Cancellation re-raises the pending Python error.
template <typename Body>
auto run_without_gil(Body&& body) {
  Cancellation cancel = python_cancellation();
  try {
    py::gil_scoped_release release;
    return body(cancel);
  } catch (const Cancelled&) {
    throw py::error_already_set();
  }
}

}  // namespace isogan::bindings

