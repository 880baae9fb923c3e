"""Geodesic distances (owner: paths stage)."""

def geodesic_distances(graph, method="auto", indices=None, n_jobs=None, device="auto"):
    raise NotImplementedError("paths stage not merged yet")
