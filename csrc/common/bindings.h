// One bind_<stage> per native stage, each defined in csrc/<stage>/<stage>_py.cpp; csrc/module.cpp
// calls them in order to build isogan._core.
#pragma once

#include <pybind11/pybind11.h>

void bind_common(pybind11::module_& m);    // common/common_py.cpp: build and device queries, DeviceArray
void bind_knn(pybind11::module_& m);       // knn/knn_py.cpp
void bind_paths(pybind11::module_& m);     // paths/paths_py.cpp
void bind_mds(pybind11::module_& m);       // mds/mds_py.cpp
void bind_landmark(pybind11::module_& m);  // landmark/landmark_py.cpp
void bind_ops(pybind11::module_& m);       // ops/ops_py.cpp
