// Landmark Isomap kernels (de Silva & Tenenbaum 2003): every one is O(N * L) work and memory,
// never N^2. Landmark rows of the geodesic matrix are stored landmark-major, (L, N), so that one
// landmark's distances to all points are contiguous.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/common.h"

namespace isogan {

// MaxMin (farthest point) selection in input space, Euclidean distance.
template <typename T>
struct LandmarkMaxMinParams {
  const T* points;          // points: (n_points, n_features) row-major
  index_t n_points;
  index_t n_features;
  index_t n_landmarks;      // landmarks to pick, 1 <= n_landmarks <= n_points
  index_t first_landmark;   // index of the first landmark (chosen by the caller's random_state)
  index_t* landmark_index;  // out landmark_index: (n_landmarks,) picked point indices, in order
  double* min_sq_distance;  // out min_sq_distance: (n_points,) squared distance to nearest landmark
};

// Triangulation x_i = projection * (delta_i - mean_sq_distance) with delta_i[l] = G[l, i]^2.
template <typename T>
struct LandmarkTriangulateParams {
  const T* landmark_geodesic;      // landmark_geodesic: (n_landmarks, n_points) row-major
  const double* projection;        // projection: (n_components, n_landmarks) = -1/2 pinv(landmark embedding)
  const double* mean_sq_distance;  // mean_sq_distance: (n_landmarks,) column means of squared landmark block
  index_t n_landmarks;
  index_t n_points;
  index_t n_components;
  T* embedding;                    // out embedding: (n_points, n_components) row-major
};

// Min-plus from new points to landmarks through their neighbours in the training set:
// out[l, m] = min_j (neighbor_distance[m, j] + G[l, neighbor_index[m, j]]).
template <typename T>
struct LandmarkMinPlusParams {
  const T* landmark_geodesic;        // landmark_geodesic: (n_landmarks, n_train) row-major
  const index_t* neighbor_index;     // neighbor_index: (n_queries, n_neighbors) indices into the training set
  const T* neighbor_distance;        // neighbor_distance: (n_queries, n_neighbors)
  index_t n_landmarks;
  index_t n_train;
  index_t n_queries;
  index_t n_neighbors;
  T* query_geodesic;                 // out query_geodesic: (n_landmarks, n_queries) row-major
};

template <typename T>
void maxmin_landmarks_cpu(const LandmarkMaxMinParams<T>& params, int n_threads, Cancellation& cancel);
template <typename T>
void triangulate_cpu(const LandmarkTriangulateParams<T>& params, int n_threads, Cancellation& cancel);
template <typename T>
void landmark_min_plus_cpu(const LandmarkMinPlusParams<T>& params, int n_threads, Cancellation& cancel);

#ifdef ISOGAN_WITH_CUDA
// Same contracts; every pointer is a device pointer, work is queued on `stream` (a cudaStream_t).
// maxmin_landmarks_cuda writes landmark_index and min_sq_distance on the device.
template <typename T>
void maxmin_landmarks_cuda(const LandmarkMaxMinParams<T>& params, void* stream);
template <typename T>
void triangulate_cuda(const LandmarkTriangulateParams<T>& params, void* stream);
template <typename T>
void landmark_min_plus_cuda(const LandmarkMinPlusParams<T>& params, void* stream);

// One device allocation of the host-driven GPU landmark pipeline (isogan/_landmark_cuda.py): NumPy
// on the host, every kernel on the legacy default stream (0). Plain cudaMalloc / cudaMemcpy keep
// copies and kernels ordered on that stream without explicit synchronisation, and a copy from the
// host returns once the host array may be reused, so out-of-core blocks are streamed through a
// single host block.
class LandmarkDeviceBuffer {
 public:
  // Throws DeviceMemoryError (a Python MemoryError) when the device cannot hold n_bytes.
  explicit LandmarkDeviceBuffer(std::size_t n_bytes);
  ~LandmarkDeviceBuffer();
  LandmarkDeviceBuffer(const LandmarkDeviceBuffer&) = delete;
  LandmarkDeviceBuffer& operator=(const LandmarkDeviceBuffer&) = delete;

  void* data() const { return data_; }
  std::size_t size() const { return size_; }
  // Copy n_bytes from host memory into bytes [offset, offset + n_bytes) of the buffer, and back.
  // The caller has checked offset + n_bytes <= size().
  void upload(const void* host, std::size_t offset, std::size_t n_bytes);
  void download(void* host, std::size_t offset, std::size_t n_bytes) const;

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};
#endif

}  // namespace isogan
