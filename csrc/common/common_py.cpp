// Bindings of common/: what this build and machine offer, and isogan.DeviceArray.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/bindings.h"
#include "common/common.h"
#include "common/device.h"
#include "common/device_array.h"

namespace py = pybind11;

namespace {

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

}  // namespace

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
