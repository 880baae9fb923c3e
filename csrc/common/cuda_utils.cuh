// CUDA plumbing shared by every *_cuda.cu: one launch/API check macro, one RAII device buffer.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/device.h"

namespace isogan {

// A failed runtime call also leaves its error as the thread's "last error", which the next
// cudaGetLastError() (ours after a launch, or PyTorch's after its own kernels) would report as if
// that later launch had failed. Clear it first: a non-sticky error (out of memory, invalid
// argument) then stays with the call that caused it; a sticky one is reported again anyway.
[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  cudaGetLastError();
  if (err == cudaErrorMemoryAllocation) {
    throw DeviceMemoryError(std::string("CUDA out of memory in ") + what + " (" + file + ":" + std::to_string(line) +
                            "): " + cudaGetErrorString(err) + ". Use float32 input, landmark Isomap (n_landmarks=...) "
                            "or device='cpu'.");
  }
  throw std::runtime_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                           "): " + cudaGetErrorString(err));
}

}  // namespace isogan

// Wrap every CUDA API call; after a kernel launch use ISOGAN_CUDA_CHECK(cudaGetLastError()).
#define ISOGAN_CUDA_CHECK(expr)                                                  \
  do {                                                                           \
    cudaError_t isogan_err_ = (expr);                                            \
    if (isogan_err_ != cudaSuccess) ::isogan::throw_cuda_error(isogan_err_, #expr, __FILE__, __LINE__); \
  } while (0)

namespace isogan {

// Owning device allocation, stream-ordered (cudaMallocAsync) so frees do not synchronise.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(std::size_t count, cudaStream_t stream) : count_(count), stream_(stream) {
    if (count_ > 0) ISOGAN_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), count_ * sizeof(T), stream_));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    swap(other);
    return *this;
  }
  ~DeviceBuffer() {
    // Destructors must not throw; a failed free must not linger as the thread's last error either.
    if (data_ && cudaFreeAsync(data_, stream_) != cudaSuccess) cudaGetLastError();
  }

  T* data() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  void swap(DeviceBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    std::swap(stream_, other.stream_);
  }
  T* data_ = nullptr;
  std::size_t count_ = 0;
  cudaStream_t stream_ = nullptr;
};

// Makes `device` current for the scope of a call and restores the caller's device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : device_(device) {
    ISOGAN_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device_) ISOGAN_CUDA_CHECK(cudaSetDevice(device_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard() {
    if (previous_ != device_ && cudaSetDevice(previous_) != cudaSuccess) cudaGetLastError();
  }

 private:
  int previous_ = 0;
  int device_ = 0;
};

// The device that owns `pointer` (device or managed memory); the current device for anything else.
// Kernels, scratch allocations and the caller's stream must all belong to the data's device: on a
// multi-GPU machine that need not be the current one (a tensor on cuda:1 while cuda:0 is current).
inline int device_of(const void* pointer) {
  cudaPointerAttributes attributes{};  // type 0: cudaMemoryTypeUnregistered
  // An empty array may have no address at all.
  if (pointer != nullptr) ISOGAN_CUDA_CHECK(cudaPointerGetAttributes(&attributes, pointer));
  if (attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged) return attributes.device;
  int current = 0;
  ISOGAN_CUDA_CHECK(cudaGetDevice(&current));
  return current;
}

inline unsigned int ceil_div(std::size_t a, std::size_t b) { return static_cast<unsigned int>((a + b - 1) / b); }

}  // namespace isogan
