// The binding side of every stage, written once: C-contiguous numpy arrays, shape checks that
// raise ValueError, the element-type tag of address arguments, and the GIL release with Ctrl-C
// polling around a native call.
//
// One dtype convention for all of isogan._core: an entry point has one name, bound once per element
// type (float32, float64) as pybind11 overloads, and the overload is chosen by the data's own dtype:
//   - numpy arrays are taken with `.noconvert()`, so their dtype picks the overload;
//   - arrays passed by address (device pointers as int) come with `dtype`, a numpy.dtype that only
//     the matching overload accepts (Dtype<T> below).
// No dtype in a name, no dtype strings or integer codes; any other dtype is a TypeError that lists
// the accepted signatures, never a hidden copy or cast. (The fused GAN ops, which take torch
// buffers, name theirs by the torch.dtype: see ops/ops_py.cpp.)
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/common.h"

namespace isogan::bindings {

namespace py = pybind11;

// A C-contiguous numpy array of T; with `.noconvert()` no other layout or dtype binds.
template <typename T>
using carray = py::array_t<T, py::array::c_style>;

// Tag of the element type T of arrays passed by address; see the caster at the end of this file.
template <typename T>
struct Dtype {};

// A new 1-D numpy array holding a copy of `values`.
template <typename V>
carray<V> vector_to_numpy(const std::vector<V>& values) {
  carray<V> out(static_cast<py::ssize_t>(values.size()));
  std::copy(values.begin(), values.end(), out.mutable_data());
  return out;
}

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

namespace pybind11::detail {

// Loads Dtype<T> from a numpy.dtype equal to T's (native byte order); anything else, strings
// included, does not load, so pybind11 tries the other overload or raises TypeError.
template <typename T>
struct type_caster<isogan::bindings::Dtype<T>> {
  PYBIND11_TYPE_CASTER(isogan::bindings::Dtype<T>, const_name("numpy.dtype[") + npy_format_descriptor<T>::name +
                                                       const_name("]"));

  bool load(handle source, bool /*convert*/) {
    if (!isinstance<dtype>(source)) return false;
    return reinterpret_borrow<dtype>(source).equal(dtype::of<T>());
  }

  static handle cast(const isogan::bindings::Dtype<T>&, return_value_policy, handle) {
    return dtype::of<T>().release();
  }
};

}  // namespace pybind11::detail
