"""kNN / radius neighbour graphs (owner: knn stage)."""

def knn_graph(X, n_neighbors=None, radius=None, metric="minkowski", p=2, metric_params=None, n_jobs=None, device="auto"):
    raise NotImplementedError("knn stage not merged yet")
