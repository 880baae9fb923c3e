// isogan._core: the one pybind11 module; each stage binds its own entry points.
#include <pybind11/pybind11.h>

#include "common/bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "isogan native core: kNN graph, geodesic distances, MDS eigensolve, landmark Isomap, fused GAN ops.";
  bind_common(m);
  bind_knn(m);
  bind_paths(m);
  bind_mds(m);
  bind_landmark(m);
  bind_ops(m);
}
