#include "common/cuda_utils.cuh"
#include "common/device.h"

namespace isogan {

CudaStatus cuda_status() {
  CudaStatus status;
  cudaRuntimeGetVersion(&status.runtime_version);
  cudaError_t err = cudaDriverGetVersion(&status.driver_version);
  if (err != cudaSuccess || status.driver_version == 0) {
    cudaGetLastError();
    status.reason = "no NVIDIA driver found";
    return status;
  }
  // CUDA's minor-version compatibility: a driver of the same major version runs a newer minor
  // runtime (our kernels are SASS for the built architectures, no PTX JIT needed), so only an
  // older major version is refused here.
  if (status.driver_version / 1000 < status.runtime_version / 1000) {
    status.reason = "the NVIDIA driver (CUDA " + std::to_string(status.driver_version / 1000) + "." +
                    std::to_string(status.driver_version % 1000 / 10) + ") is older than the CUDA runtime isogan was built with (" +
                    std::to_string(status.runtime_version / 1000) + "." + std::to_string(status.runtime_version % 1000 / 10) +
                    "); update the driver or use device='cpu'";
    return status;
  }
  err = cudaGetDeviceCount(&status.device_count);
  if (err != cudaSuccess || status.device_count == 0) {
    status.reason = std::string("no usable CUDA device: ") +
                    (err != cudaSuccess ? cudaGetErrorString(err) : "none is visible (check CUDA_VISIBLE_DEVICES)");
    cudaGetLastError();
    return status;
  }
  status.available = true;
  return status;
}

void cuda_memory_info(std::size_t* free_bytes, std::size_t* total_bytes) {
  ISOGAN_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

}  // namespace isogan
