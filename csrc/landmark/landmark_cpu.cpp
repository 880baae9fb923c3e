// CPU landmark Isomap kernels: OpenMP over points (MaxMin, triangulation) or queries (min-plus).
#include "landmark/landmark.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace isogan {

namespace {

// Points per thread-owned block in triangulation and min-plus: the block's accumulators stay in L1.
constexpr index_t kPointBlock = 256;

}  // namespace

template <typename T>
void maxmin_landmarks_cpu(const LandmarkMaxMinParams<T>& params, int n_threads, Cancellation& cancel) {
  const index_t n_points = params.n_points;
  const index_t n_features = params.n_features;
  if (params.n_landmarks < 1 || params.n_landmarks > n_points) {
    throw std::invalid_argument("n_landmarks must be in [1, n_points], got " + std::to_string(params.n_landmarks));
  }
  if (params.first_landmark < 0 || params.first_landmark >= n_points) {
    throw std::invalid_argument("first_landmark must be in [0, n_points), got " + std::to_string(params.first_landmark));
  }
  // Every round ends in two barriers; below ~1M coordinates per thread and round the barrier
  // (a descheduled thread on a shared machine costs milliseconds) outweighs the work.
  constexpr index_t kCoordinatesPerThread = index_t{1} << 20;
  n_threads = static_cast<int>(std::max<index_t>(
      1, std::min<index_t>(n_threads, (n_points * n_features + kCoordinatesPerThread - 1) / kCoordinatesPerThread)));
  double* min_sq = params.min_sq_distance;
  std::fill(min_sq, min_sq + n_points, std::numeric_limits<double>::infinity());
  // A picked landmark is marked -1 so that duplicates of it (distance 0) are picked before it again.
  constexpr double kPicked = -1.0;
  std::vector<double> thread_best_value(n_threads);
  std::vector<index_t> thread_best_index(n_threads);
  index_t current = params.first_landmark;
  params.landmark_index[0] = current;
  min_sq[current] = kPicked;
  bool stop = false;

#pragma omp parallel num_threads(n_threads)
  {
    const int thread = omp_get_thread_num();
    for (index_t picked = 1; picked < params.n_landmarks; ++picked) {
      const T* center = params.points + current * n_features;
      double best_value = -2.0;
      index_t best_index = n_points;
#pragma omp for schedule(static)
      for (index_t i = 0; i < n_points; ++i) {
        if (min_sq[i] == kPicked) continue;
        const T* point = params.points + i * n_features;
        double sq = 0.0;
        for (index_t f = 0; f < n_features; ++f) {
          const double diff = static_cast<double>(point[f]) - static_cast<double>(center[f]);
          sq += diff * diff;
        }
        if (sq < min_sq[i]) min_sq[i] = sq;
        // Static schedule visits ascending i: strict '>' keeps the smallest index among ties.
        if (min_sq[i] > best_value) {
          best_value = min_sq[i];
          best_index = i;
        }
      }
      thread_best_value[thread] = best_value;
      thread_best_index[thread] = best_index;
#pragma omp barrier
#pragma omp master
      {
        double value = -2.0;
        index_t index = n_points;
        for (int t = 0; t < n_threads; ++t) {
          if (thread_best_value[t] > value || (thread_best_value[t] == value && thread_best_index[t] < index)) {
            value = thread_best_value[t];
            index = thread_best_index[t];
          }
        }
        current = index;
        params.landmark_index[picked] = current;
        min_sq[current] = kPicked;
        stop = cancel.stop_requested(true);
      }
#pragma omp barrier
      if (stop) break;
    }
  }
  if (cancel.cancelled()) throw Cancelled();
  // Each round lowered distances by the previous landmark; the last one is applied here.
  const T* last = params.points + params.landmark_index[params.n_landmarks - 1] * n_features;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (index_t i = 0; i < n_points; ++i) {
    if (min_sq[i] == kPicked) continue;
    double sq = 0.0;
    for (index_t f = 0; f < n_features; ++f) {
      const double diff = static_cast<double>(params.points[i * n_features + f]) - static_cast<double>(last[f]);
      sq += diff * diff;
    }
    if (sq < min_sq[i]) min_sq[i] = sq;
  }
  for (index_t l = 0; l < params.n_landmarks; ++l) min_sq[params.landmark_index[l]] = 0.0;
}

template <typename T>
void triangulate_cpu(const LandmarkTriangulateParams<T>& params, int n_threads, Cancellation& cancel) {
  const index_t n_points = params.n_points;
  const index_t n_landmarks = params.n_landmarks;
  const index_t n_components = params.n_components;
  const index_t n_blocks = (n_points + kPointBlock - 1) / kPointBlock;
#pragma omp parallel num_threads(n_threads)
  {
    // accumulator: (n_components, kPointBlock); squared: (kPointBlock,)
    std::vector<double> accumulator(static_cast<std::size_t>(n_components * kPointBlock));
    std::vector<double> centered(static_cast<std::size_t>(kPointBlock));
#pragma omp for schedule(dynamic, 4)
    for (index_t block = 0; block < n_blocks; ++block) {
      if (cancel.stop_requested(omp_get_thread_num() == 0)) continue;
      const index_t begin = block * kPointBlock;
      const index_t count = std::min(kPointBlock, n_points - begin);
      std::fill(accumulator.begin(), accumulator.end(), 0.0);
      for (index_t l = 0; l < n_landmarks; ++l) {
        const T* row = params.landmark_geodesic + l * n_points + begin;
        const double mean = params.mean_sq_distance[l];
        for (index_t i = 0; i < count; ++i) {
          const double d = static_cast<double>(row[i]);
          centered[i] = d * d - mean;
        }
        for (index_t c = 0; c < n_components; ++c) {
          const double weight = params.projection[c * n_landmarks + l];
          double* acc = accumulator.data() + c * kPointBlock;
          for (index_t i = 0; i < count; ++i) acc[i] += weight * centered[i];
        }
      }
      for (index_t i = 0; i < count; ++i) {
        for (index_t c = 0; c < n_components; ++c) {
          params.embedding[(begin + i) * n_components + c] = static_cast<T>(accumulator[c * kPointBlock + i]);
        }
      }
    }
  }
  if (cancel.cancelled()) throw Cancelled();
}

template <typename T>
void landmark_min_plus_cpu(const LandmarkMinPlusParams<T>& params, int n_threads, Cancellation& cancel) {
  const index_t n_queries = params.n_queries;
  const index_t n_neighbors = params.n_neighbors;
  for (index_t e = 0; e < n_queries * n_neighbors; ++e) {
    const index_t j = params.neighbor_index[e];
    if (j < 0 || j >= params.n_train) {
      throw std::invalid_argument("neighbor_index holds " + std::to_string(j) + ", outside [0, " +
                                  std::to_string(params.n_train) + ")");
    }
  }
  const index_t n_blocks = (n_queries + kPointBlock - 1) / kPointBlock;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 4)
  for (index_t block = 0; block < n_blocks; ++block) {
    if (cancel.stop_requested(omp_get_thread_num() == 0)) continue;
    const index_t begin = block * kPointBlock;
    const index_t end = std::min(n_queries, begin + kPointBlock);
    for (index_t l = 0; l < params.n_landmarks; ++l) {
      const T* row = params.landmark_geodesic + l * params.n_train;
      T* out = params.query_geodesic + l * n_queries;
      for (index_t m = begin; m < end; ++m) {
        const index_t* index = params.neighbor_index + m * n_neighbors;
        const T* distance = params.neighbor_distance + m * n_neighbors;
        T best = std::numeric_limits<T>::infinity();
        for (index_t j = 0; j < n_neighbors; ++j) best = std::min(best, distance[j] + row[index[j]]);
        out[m] = best;
      }
    }
  }
  if (cancel.cancelled()) throw Cancelled();
}

template void maxmin_landmarks_cpu<float>(const LandmarkMaxMinParams<float>&, int, Cancellation&);
template void maxmin_landmarks_cpu<double>(const LandmarkMaxMinParams<double>&, int, Cancellation&);
template void triangulate_cpu<float>(const LandmarkTriangulateParams<float>&, int, Cancellation&);
template void triangulate_cpu<double>(const LandmarkTriangulateParams<double>&, int, Cancellation&);
template void landmark_min_plus_cpu<float>(const LandmarkMinPlusParams<float>&, int, Cancellation&);
template void landmark_min_plus_cpu<double>(const LandmarkMinPlusParams<double>&, int, Cancellation&);

}  // namespace isogan
