// Which accelerators this build and this machine offer.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace isogan {

struct CudaStatus {
  bool available = false;   // a device can run our kernels right now
  std::string reason;       // why not, when !available
  int device_count = 0;
  int driver_version = 0;   // e.g. 12040; 0 when no driver answered
  int runtime_version = 0;  // of the statically linked cudart
};

// Thrown when the device cannot hold an allocation; the binding maps it to a MemoryError subclass.
struct DeviceMemoryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr bool cuda_built() {
#ifdef ISOGAN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

CudaStatus cuda_status();

// Free and total bytes on the current device; throws std::runtime_error without CUDA.
void cuda_memory_info(std::size_t* free_bytes, std::size_t* total_bytes);

}  // namespace isogan
