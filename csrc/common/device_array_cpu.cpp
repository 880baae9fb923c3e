// DeviceArray without CUDA: construction fails with the reason; no instance can exist.
#include "common/device_array.h"

#include <stdexcept>
#include <utility>

#ifndef ISOGAN_WITH_CUDA
namespace isogan {

struct DeviceArray::Storage {};

DeviceArray::DeviceArray(std::vector<index_t> shape, std::size_t itemsize, std::string typestr, std::uintptr_t stream)
    : shape_(std::move(shape)), itemsize_(itemsize), typestr_(std::move(typestr)), stream_(stream) {
  throw std::runtime_error(
      "cannot allocate a DeviceArray: isogan was built without CUDA (nvcc was not found at build time)");
}

DeviceArray::~DeviceArray() = default;

void* DeviceArray::data() const { return nullptr; }

std::size_t DeviceArray::size() const { return 0; }

void DeviceArray::copy_to_host(void*) const { throw std::runtime_error("isogan was built without CUDA"); }

void DeviceArray::copy_from_host(const void*) { throw std::runtime_error("isogan was built without CUDA"); }

}  // namespace isogan
#endif
