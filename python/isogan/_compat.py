"""The private scikit-learn names isogan relies on, in one place, each with a fallback.

isogan promises scikit-learn's Isomap behaviour (validation, wording, nested-validation context),
which scikit-learn implements in private helpers. They are imported here only; when a release
moves one, the fallback below keeps isogan working (or says clearly what is missing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

try:
    from sklearn.base import _fit_context
except ImportError:  # scikit-learn < 1.3 has no nested-validation context

    def _fit_context(prefer_skip_nested_validation: bool) -> Callable[[Callable], Callable]:
        """No-op stand-in: the estimator validates its parameters itself."""

        def decorator(fit_method: Callable) -> Callable:
            return fit_method

        return decorator


try:
    from sklearn.metrics.pairwise import _VALID_METRICS
except ImportError:
    from sklearn.neighbors import VALID_METRICS as _NEIGHBOR_METRICS

    _VALID_METRICS = sorted(set(_NEIGHBOR_METRICS["brute"]))

try:
    from sklearn.neighbors._base import _check_precomputed
except ImportError:
    from sklearn.utils import check_array

    def _check_precomputed(X: Any) -> Any:
        """Validate a precomputed distance matrix (dense, non-negative) as scikit-learn does."""
        return check_array(X, accept_sparse="csr", ensure_non_negative=True, input_name="X")


fit_context = _fit_context
VALID_METRICS = list(_VALID_METRICS)
check_precomputed = _check_precomputed


def neighbors_fit_data(nbrs: Any) -> Any:
    """The validated training data of a fitted NearestNeighbors (a tree's memory view as numpy).

    scikit-learn keeps it in the private ``_fit_X``; a release without it raises a clear error.
    """
    from scipy.sparse import issparse

    try:
        fit_X = nbrs._fit_X
    except AttributeError as error:
        raise RuntimeError(
            "This scikit-learn release no longer exposes NearestNeighbors._fit_X, which isogan reads "
            "to get the validated training points; please report it with your scikit-learn version."
        ) from error
    return fit_X if issparse(fit_X) else np.asarray(fit_X)

try:
    from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
except ImportError as error:  # pragma: no cover - every supported scikit-learn has them
    raise ImportError(
        "isogan needs scikit-learn's parameter validation (sklearn.utils._param_validation, "
        "scikit-learn >= 1.6); upgrade scikit-learn."
    ) from error

__all__ = [
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "VALID_METRICS",
    "check_precomputed",
    "fit_context",
    "neighbors_fit_data",
]
