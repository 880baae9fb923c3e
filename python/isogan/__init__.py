"""isogan: fast Isomap (C++/OpenMP/CUDA) as a drop-in for scikit-learn, and a GAN that draws
images at chosen manifold coordinates.

The Isomap stages are also public functions: :func:`knn_graph`, :func:`geodesic_distances`
and :func:`classical_mds`. Nothing here imports torch; the fused GAN ops live in
:mod:`isogan.ops` and the GAN in :mod:`isogan.gan` (``pip install isogan[gan]``).
"""

from isogan._backend.arrays import DeviceArray
from isogan._backend.policy import UnverifiedCudaWarning, cuda_available, cuda_built
from isogan.isomap import Isomap
from isogan.knn import knn_graph
from isogan.mds import classical_mds
from isogan.paths import geodesic_distances

__version__ = "0.1.0"

__all__ = [
    "DeviceArray",
    "Isomap",
    "UnverifiedCudaWarning",
    "classical_mds",
    "cuda_available",
    "cuda_built",
    "geodesic_distances",
    "knn_graph",
]
