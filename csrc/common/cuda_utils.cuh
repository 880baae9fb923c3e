// CUDA plumbing shared by every *_cuda.cu: one launch/API check macro, one RAII device buffer.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "common/device.h"

namespace isogan {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  // A non-sticky error (e.g. an allocation that did not fit) stays "last error" until read; clear it
  // so that the next launch check in this process does not report it again.
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
    if (data_) cudaFreeAsync(data_, stream_);
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

inline unsigned int ceil_div(std::size_t a, std::size_t b) { return static_cast<unsigned int>((a + b - 1) / b); }

}  // namespace isogan
