// Fallbacks used when the module is built without CUDA.
#include "common/device.h"

#include <stdexcept>

#ifndef ISOGAN_WITH_CUDA
namespace isogan {

CudaStatus cuda_status() {
  CudaStatus status;
  status.reason = "isogan was built without CUDA (nvcc was not found at build time)";
  return status;
}

void cuda_memory_info(std::size_t*, std::size_t*) {
  throw std::runtime_error("isogan was built without CUDA");
}

}  // namespace isogan
#endif
