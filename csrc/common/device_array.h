// An owning, C-contiguous device allocation with a shape and an element type. The estimator's GPU
// chain writes the (N, N) geodesic matrix into one and the eigensolver reads it in place; Python sees
// it as isogan.DeviceArray with __cuda_array_interface__ (version 3), so torch and CuPy read it
// without a copy too. Built without CUDA (or without a usable device) the constructor throws
// std::runtime_error naming the reason; nothing else is reachable then.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/common.h"

namespace isogan {

class DeviceArray {
 public:
  // Allocates product(shape) * itemsize bytes on the current device, stream-ordered on `stream`
  // (a cudaStream_t as an integer; 0 = the legacy default stream). `typestr` is the numpy array
  // interface type string ('<f4', '<f8', '<i8', ...), kept for Python. Contents are uninitialised.
  // Throws DeviceMemoryError when the device cannot hold it, std::runtime_error without a device.
  DeviceArray(std::vector<index_t> shape, std::size_t itemsize, std::string typestr, std::uintptr_t stream);
  ~DeviceArray();
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  void* data() const;
  const std::vector<index_t>& shape() const { return shape_; }
  std::size_t itemsize() const { return itemsize_; }
  const std::string& typestr() const { return typestr_; }
  std::size_t size() const;
  std::size_t nbytes() const { return size() * itemsize_; }
  // The stream on which the contents are produced; consumers order their reads after it.
  std::uintptr_t stream() const { return stream_; }
  // The CUDA device ordinal that was current at allocation.
  int device() const { return device_; }

  // Synchronous copies of all nbytes() bytes between this array and host memory: wait for the
  // array's stream, then copy (the host side is pageable memory, e.g. a numpy array).
  void copy_to_host(void* host) const;
  void copy_from_host(const void* host);

 private:
  struct Storage;
  std::vector<index_t> shape_;
  std::size_t itemsize_ = 0;
  std::string typestr_;
  std::uintptr_t stream_ = 0;
  int device_ = 0;
  std::unique_ptr<Storage> storage_;
};

}  // namespace isogan
