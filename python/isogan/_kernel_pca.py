"""``Isomap.kernel_pca_``: the fitted eigen-decomposition, in the shape of scikit-learn's KernelPCA."""

from __future__ import annotations

import numpy as np

from isogan.mds import MdsFitState

__all__ = ["IsomapKernelPCA"]


class IsomapKernelPCA:
    """The eigen-decomposition of the centred Isomap kernel, as fitted by :class:`Isomap`.

    It plays the role of the :class:`~sklearn.decomposition.KernelPCA` object that scikit-learn's
    Isomap keeps in ``kernel_pca_``, without holding a copy of the N x N kernel: the kernel
    ``K = -1/2 * J (D o D) J`` (``J = I - 11^T / N``) is described by its top eigenpairs and by the
    fit-time means needed to centre new kernel rows.

    Parameters
    ----------
    n_components : int
        Number of components requested at fit time.
    fit_state : isogan.mds.MdsFitState
        Eigenpairs and centring statistics from :func:`isogan.mds.mds_fit_state`.

    Attributes
    ----------
    n_components : int
        Number of components requested at fit time.
    eigenvalues_ : ndarray of shape (n_components,)
        Eigenvalues of the centred kernel in descending order, clipped like scikit-learn's
        ``_check_psd_eigenvalues``.
    eigenvectors_ : ndarray of shape (n_samples, n_components)
        Unit eigenvectors of the centred kernel, signs fixed like ``svd_flip``.
    kernel_row_means_ : ndarray of shape (n_samples,)
        Row means of the uncentred training kernel ``-1/2 * D o D`` (``KernelCenterer.K_fit_rows_``).
    kernel_mean_ : float
        Mean of the uncentred training kernel (``KernelCenterer.K_fit_all_``).
    fit_state : isogan.mds.MdsFitState
        What :func:`isogan.mds.mds_transform` needs to project new points.
    """

    def __init__(self, n_components: int, fit_state: MdsFitState) -> None:
        self.n_components = n_components
        self.fit_state = fit_state

    @property
    def eigenvalues_(self) -> np.ndarray:
        """Eigenvalues of the centred kernel, descending."""
        return self.fit_state.eigenvalues

    @property
    def eigenvectors_(self) -> np.ndarray:
        """Unit eigenvectors of the centred kernel."""
        return self.fit_state.eigenvectors

    @property
    def kernel_row_means_(self) -> np.ndarray:
        """Row means of the uncentred training kernel."""
        return self.fit_state.kernel_row_means

    @property
    def kernel_mean_(self) -> float:
        """Mean of the uncentred training kernel."""
        return self.fit_state.kernel_mean

    def transform(self, kernel_rows: np.ndarray) -> np.ndarray:
        """Project uncentred kernel rows of new points onto the fitted components.

        Same contract as ``KernelPCA(kernel='precomputed').transform``, which scikit-learn's
        Isomap calls with ``-1/2 * G**2``, ``G`` holding geodesic distances from new points to the
        training points. (:meth:`Isomap.transform` projects ``G`` directly with
        :func:`isogan.mds.mds_transform`, without forming these rows.)

        Parameters
        ----------
        kernel_rows : ndarray of shape (n_queries, n_samples)
            Uncentred kernel between new points and the training points.

        Returns
        -------
        ndarray of shape (n_queries, n_components)
        """
        centred = np.array(kernel_rows, dtype=np.result_type(kernel_rows, self.eigenvectors_), copy=True)
        centred -= self.kernel_row_means_
        centred -= centred.mean(axis=1, keepdims=True)
        centred += self.kernel_mean_
        scaled = np.zeros_like(self.eigenvectors_)
        nonzero = np.flatnonzero(self.eigenvalues_)
        scaled[:, nonzero] = self.eigenvectors_[:, nonzero] / np.sqrt(self.eigenvalues_[nonzero])
        return centred @ scaled
