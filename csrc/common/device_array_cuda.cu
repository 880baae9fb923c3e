// DeviceArray on CUDA: the bytes live in one DeviceBuffer (cudaMallocAsync on the array's stream).
#include <stdexcept>
#include <utility>

#include "common/cuda_utils.cuh"
#include "common/device.h"
#include "common/device_array.h"

namespace isogan {

struct DeviceArray::Storage {
  DeviceBuffer<unsigned char> bytes;
};

namespace {

std::size_t element_count(const std::vector<index_t>& shape) {
  std::size_t count = 1;
  for (const index_t extent : shape) {
    if (extent < 0) throw std::invalid_argument("DeviceArray extents must be >= 0");
    count *= static_cast<std::size_t>(extent);
  }
  return count;
}

}  // namespace

DeviceArray::DeviceArray(std::vector<index_t> shape, std::size_t itemsize, std::string typestr,
                         std::uintptr_t stream)
    : shape_(std::move(shape)), itemsize_(itemsize), typestr_(std::move(typestr)), stream_(stream) {
  const std::size_t count = element_count(shape_);
  const CudaStatus status = cuda_status();
  if (!status.available) throw std::runtime_error("cannot allocate a DeviceArray: " + status.reason);
  ISOGAN_CUDA_CHECK(cudaGetDevice(&device_));
  storage_ = std::make_unique<Storage>();
  storage_->bytes = DeviceBuffer<unsigned char>(count * itemsize_, reinterpret_cast<cudaStream_t>(stream_));
}

DeviceArray::~DeviceArray() = default;

void* DeviceArray::data() const { return storage_->bytes.data(); }

std::size_t DeviceArray::size() const { return element_count(shape_); }

void DeviceArray::copy_to_host(void* host) const {
  const std::size_t n_bytes = nbytes();
  const DeviceGuard guard(device_);
  ISOGAN_CUDA_CHECK(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream_)));
  if (n_bytes > 0) ISOGAN_CUDA_CHECK(cudaMemcpy(host, data(), n_bytes, cudaMemcpyDeviceToHost));
}

void DeviceArray::copy_from_host(const void* host) {
  const std::size_t n_bytes = nbytes();
  const DeviceGuard guard(device_);
  // The allocation itself is ordered on the array's stream; the copy must come after it.
  ISOGAN_CUDA_CHECK(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream_)));
  if (n_bytes > 0) ISOGAN_CUDA_CHECK(cudaMemcpy(data(), host, n_bytes, cudaMemcpyHostToDevice));
}

}  // namespace isogan
