#include "common/common.h"

#include <omp.h>

#include <algorithm>

namespace isogan {

int resolve_threads(int n_jobs) {
  const int available = omp_get_max_threads();
  if (n_jobs > 0) return n_jobs;
  if (n_jobs == 0) return available;
  return std::max(1, available + 1 + n_jobs);
}

}  // namespace isogan
