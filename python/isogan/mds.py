"""Classical multidimensional scaling of a distance matrix, as scikit-learn's Isomap does it.

scikit-learn embeds a geodesic distance matrix ``D`` with
``KernelPCA(kernel="precomputed").fit_transform(-0.5 * D**2)``: it forms and centres the kernel
``K = -1/2 J (D o D) J`` (``J = I - 11^T/N``) and takes its top eigenpairs. :func:`classical_mds`
returns the same embedding (clipping, signs and order included) without forming ``K``: the native
core multiplies ``K`` with a block of vectors in one pass over ``D`` (squaring on the fly, centring
in O(N) per vector), and a block Lanczos eigensolver with Rayleigh-Ritz runs on the small dense
blocks here. Beyond ``D`` itself it needs O(N) vectors, no N x N array (except
``eigen_solver='dense'``, which writes the centred kernel once for LAPACK).

:func:`mds_fit_state` and :func:`mds_transform` give the out-of-sample projection of
``Isomap.transform`` (``KernelPCA.transform`` on ``-0.5 * G**2``).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import ArpackError, LinearOperator, eigsh
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array
from threadpoolctl import threadpool_limits

from isogan import _core
from isogan._backend import cuda_mds
from isogan._backend.arrays import from_host_like, is_device_array, to_host
from isogan._backend.memory import MDS_MIN_BLOCK, ensure_memory, mds_device_product_bytes
from isogan._backend.policy import check_device, resolve_device, threads
from isogan._ranges import check_kernel_range

__all__ = ["MdsFitState", "classical_mds", "mds_fit_state", "mds_transform"]

_EIGEN_SOLVERS = ("auto", "dense", "arpack")

# 'auto' solves densely up to this many points (LAPACK on an N x N kernel is faster than any
# iterative method there) and with the block Lanczos solver above it.
_DENSE_MAX_N = 256

# Default relative residual target (tol=0) per input dtype: the block solver stops when every wanted
# Ritz pair has ||K x - theta x|| <= tolerance * |theta_max|. float64 D: eigenvectors to ~1e-12
# over the spectral gap, far below the 1e-6 parity bound and above the ~1e-15 floor of the double
# accumulation; float32 D: its own machine precision, as ARPACK's tol=0 in single precision.
_DEFAULT_TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-7}

# Block Lanczos shape: vectors per block (at least 8, twice the wanted count; one pass over D serves
# them all) and blocks added to the Krylov basis between restarts.
_MIN_BLOCK = MDS_MIN_BLOCK
_BLOCKS_PER_CYCLE = 6
_DEFAULT_MAX_PASSES = 1000


@dataclass(frozen=True)
class MdsFitState:
    """What :func:`mds_transform` needs from a fitted classical MDS (KernelPCA's fitted centerer).

    Attributes
    ----------
    kernel_row_means : ndarray of shape (n_samples,), float64
        Means over the training points of the uncentred kernel ``-0.5 * D**2``, one per training point
        (``KernelCenterer.K_fit_rows_``; rows and columns agree because ``D`` is symmetric).
    kernel_mean : float
        Mean of the whole uncentred kernel (``KernelCenterer.K_fit_all_``).
    eigenvalues : ndarray of shape (n_components,)
        Eigenvalues returned by :func:`classical_mds`, descending, clipped.
    eigenvectors : ndarray of shape (n_samples, n_components)
        Unit eigenvectors returned by :func:`classical_mds`, host array.
    """

    kernel_row_means: np.ndarray
    kernel_mean: float
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


# ---------------------------------------------------------------------------------------- validation
def _check_scalar_params(n_components: Any, eigen_solver: Any, tol: Any, max_iter: Any) -> None:
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise ValueError(
            f"The 'n_components' parameter of classical_mds must be an int in the range [1, inf). "
            f"Got {n_components!r} instead."
        )
    if not isinstance(eigen_solver, str) or eigen_solver not in _EIGEN_SOLVERS:
        raise ValueError(
            f"The 'eigen_solver' parameter of classical_mds must be a str among {set(_EIGEN_SOLVERS)}. "
            f"Got {eigen_solver!r} instead."
        )
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(
            f"The 'tol' parameter of classical_mds must be a float in the range [0.0, inf). Got {tol!r} instead."
        )
    if max_iter is not None and (
        isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1
    ):
        raise ValueError(
            f"The 'max_iter' parameter of classical_mds must be an int in the range [1, inf) or None. "
            f"Got {max_iter!r} instead."
        )


def _check_symmetric(max_asymmetry: float, max_abs: float, dtype: np.dtype) -> None:
    # Geodesics summed in different orders differ in the last bits; anything beyond sqrt(eps) of the
    # largest distance is not a distance matrix, and the symmetric eigensolvers would return garbage.
    allowed = math.sqrt(np.finfo(dtype).eps) * max_abs
    if max_asymmetry > allowed:
        raise ValueError(
            f"dist_matrix must be symmetric: max |D - D.T| = {max_asymmetry:.3g} exceeds {allowed:.3g} "
            f"(sqrt(eps) of the largest distance). Pass a distance matrix, e.g. (D + D.T) / 2."
        )


def _check_square(shape: tuple[int, ...]) -> None:
    if len(shape) != 2:
        raise ValueError(f"Expected 2D array, got {len(shape)}D array instead.")
    if shape[0] != shape[1]:
        raise ValueError(f"dist_matrix must be a square matrix. Input is a {shape[0]}x{shape[1]} matrix.")
    if shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is required.")


# ------------------------------------------------------------------------- sklearn's post-processing
def _clip_psd_eigenvalues(eigenvalues: np.ndarray) -> np.ndarray:
    """Apply scikit-learn's ``_check_psd_eigenvalues`` rules (dtype-dependent thresholds)."""
    eigenvalues = np.array(eigenvalues)
    double = eigenvalues.dtype == np.float64
    negative_ratio = 1e-5 if double else 5e-3
    negative_value = 1e-10 if double else 1e-6
    small_ratio = 1e-12 if double else 2e-7
    largest = eigenvalues.max()
    if largest < 0:
        raise ValueError(
            f"All eigenvalues are negative (maximum is {largest:g}). Either the matrix is not PSD, or there "
            "was an issue while computing the eigendecomposition of the matrix."
        )
    smallest = eigenvalues.min()
    if smallest < -negative_ratio * largest and smallest < -negative_value:
        raise ValueError(
            f"There are significant negative eigenvalues ({-smallest / largest:g} of the maximum positive). "
            "Either the matrix is not PSD, or there was an issue while computing the eigendecomposition of "
            "the matrix."
        )
    eigenvalues[eigenvalues < 0] = 0
    eigenvalues[(eigenvalues > 0) & (eigenvalues < small_ratio * largest)] = 0
    return eigenvalues


def _flip_signs(eigenvectors: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of each column positive (``svd_flip(u, None)``)."""
    if eigenvectors.shape[0] == 0:
        return eigenvectors
    largest = np.argmax(np.abs(eigenvectors), axis=0)
    signs = np.sign(eigenvectors[largest, np.arange(eigenvectors.shape[1])])
    return eigenvectors * signs


def _finish(eigenvalues: np.ndarray, eigenvectors: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """KernelPCA's steps after the eigensolver: clip, flip signs, sort descending, scale."""
    eigenvalues = _clip_psd_eigenvalues(np.asarray(eigenvalues, dtype=dtype))
    eigenvectors = _flip_signs(np.asarray(eigenvectors, dtype=dtype))
    order = eigenvalues.argsort()[::-1]
    eigenvalues = np.ascontiguousarray(eigenvalues[order])
    eigenvectors = np.ascontiguousarray(eigenvectors[:, order])
    embedding = eigenvectors * np.sqrt(eigenvalues)
    return embedding, eigenvalues, eigenvectors


# ------------------------------------------------------------------------------------- eigensolvers
def _project_out(block: np.ndarray, basis: np.ndarray | None) -> np.ndarray:
    """``block`` minus its components along the orthonormal ``basis`` (classical Gram-Schmidt twice)."""
    if basis is None or basis.shape[1] == 0:
        return block
    for _ in range(2):
        block = block - basis @ (basis.T @ block)
    return block


def _cholesky_orthonormalize(block: np.ndarray) -> np.ndarray:
    """Orthonormal columns spanning a well-conditioned ``block`` (Cholesky QR, two sweeps)."""
    for _ in range(2):
        factor = np.linalg.cholesky(block.T @ block)
        block = scipy.linalg.solve_triangular(factor, block.T, lower=True, check_finite=False).T
    return block


def _orthonormal_block(candidates: np.ndarray, basis: np.ndarray | None, width: int,
                       rng: np.random.RandomState) -> np.ndarray:
    """An orthonormal (n, width) block spanning the dominant part of ``candidates`` orthogonal to ``basis``.

    Works on the small Gram matrix (BLAS-3 products only, no tall QR): its eigenvectors give the
    dominant ``width`` directions; directions that vanish after projection (an exhausted Krylov space,
    a degenerate start) are replaced by random ones, so the basis always grows by ``width`` columns.
    """
    n = candidates.shape[0]
    block = _project_out(candidates, basis)
    gram_values, gram_vectors = np.linalg.eigh(block.T @ block)
    order = np.argsort(gram_values)[::-1][:width]
    gram_values, gram_vectors = gram_values[order], gram_vectors[:, order]
    # The Gram matrix resolves singular values down to ~1e-8 of the largest; keep those well above.
    significant = gram_values > 1e-12 * max(float(gram_values[0]) if gram_values.size else 0.0, 0.0)
    significant &= gram_values > 0
    result = block @ (gram_vectors[:, significant] / np.sqrt(gram_values[significant]))
    if result.shape[1] < width:
        filler = rng.uniform(-1.0, 1.0, size=(n, width - result.shape[1]))
        result = np.hstack([result, filler])
    result = _project_out(result, basis)
    return _cholesky_orthonormalize(result)


def _block_lanczos(matmat: Callable[[np.ndarray], np.ndarray], n: int, n_wanted: int, *, tol: float,
                   max_passes: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n_wanted`` (algebraic) eigenpairs of a symmetric operator given by block products.

    Thick-restart block Lanczos with full reorthogonalisation: the Krylov basis grows by one block
    per product; Rayleigh-Ritz on the basis gives Ritz pairs whose residuals ``K x - theta x`` are
    exact (their images are combinations of stored products, no extra pass); at each restart the best
    Ritz vectors and their images start the next basis, and their residual block is the next direction.

    Returns
    -------
    eigenvalues : ndarray of shape (n_wanted,), descending
    eigenvectors : ndarray of shape (n, n_wanted)
    """
    block = max(_MIN_BLOCK, -(-2 * n_wanted // 8) * 8)
    block = min(block, max(1, n // 4))
    keep = max(block, n_wanted)
    max_width = min(n, keep + _BLOCKS_PER_CYCLE * block)
    start = rng.uniform(-1.0, 1.0, size=(n, block))
    basis = [_orthonormal_block(start, None, block, rng)]
    images = [matmat(basis[0])]
    passes = 1

    def rayleigh_ritz() -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        current, current_images = np.hstack(basis), np.hstack(images)
        projected = current.T @ current_images
        values, coordinates = np.linalg.eigh(0.5 * (projected + projected.T))
        order = np.argsort(values)[::-1][:keep]
        values, coordinates = values[order], coordinates[:, order]
        vectors, vector_images = current @ coordinates, current_images @ coordinates
        wanted_residuals = vector_images[:, :n_wanted] - vectors[:, :n_wanted] * values[:n_wanted]
        residuals = np.linalg.norm(wanted_residuals, axis=0)
        scale = max(float(np.max(np.abs(values))), np.finfo(np.float64).tiny)
        return values, vectors, vector_images, float(np.max(residuals)) / scale

    while True:
        # Rayleigh-Ritz after every new block (O(n width^2), small next to a pass over D) stops the
        # cycle as soon as the wanted pairs have converged.
        width = basis[0].shape[1]
        ritz_values, ritz_vectors, ritz_images, worst = rayleigh_ritz()
        while worst > tol and width + block <= max_width and passes < max_passes:
            step = _orthonormal_block(images[-1], np.hstack(basis), block, rng)
            basis.append(step)
            images.append(matmat(step))
            passes += 1
            width += block
            ritz_values, ritz_vectors, ritz_images, worst = rayleigh_ritz()
        if worst <= tol or passes >= max_passes or max_width >= n:
            break
        basis, images = [ritz_vectors], [ritz_images]
    if worst > tol and max_width < n:
        warnings.warn(
            f"classical_mds: the block Lanczos eigensolver did not converge in {passes} passes over the "
            f"distance matrix (largest relative residual {worst:.2e} > tol {tol:.2e}). Increase max_iter or "
            "tol, or use eigen_solver='dense'.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return ritz_values[:n_wanted], ritz_vectors[:, :n_wanted]


def _arpack(matvec_block: Callable[[np.ndarray], np.ndarray], n: int, n_wanted: int, *, tol: float,
            max_iter: int | None, random_state: Any) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ARPACK call (which='LA', its v0) on a LinearOperator over the implicit kernel."""
    v0 = check_random_state(random_state).uniform(-1, 1, n)
    operator = LinearOperator(
        (n, n), dtype=np.float64,
        matvec=lambda v: matvec_block(np.ascontiguousarray(v, dtype=np.float64).reshape(n, 1))[:, 0],
        matmat=lambda v: matvec_block(np.ascontiguousarray(v, dtype=np.float64)),
    )
    try:
        return eigsh(operator, n_wanted, which="LA", tol=tol, maxiter=max_iter, v0=v0)
    except ArpackError as error:
        if not str(error).startswith("ARPACK error -9:"):  # -9: "Starting vector is zero"
            raise
        # ARPACK's first product annihilated the random start vector: the centred kernel is zero
        # (every point coincides), so every eigenvalue is 0 and any orthonormal basis is an eigenbasis.
        return np.zeros(n_wanted), np.eye(n, n_wanted)


def _dense(kernel: np.ndarray, n_wanted: int) -> tuple[np.ndarray, np.ndarray]:
    n = kernel.shape[0]
    return scipy.linalg.eigh(kernel, subset_by_index=(n - n_wanted, n - 1), overwrite_a=True, check_finite=False)


def _pick_solver(eigen_solver: str, n: int, n_wanted: int) -> str:
    if eigen_solver == "arpack" and n_wanted >= n:
        # ARPACK needs k < N; on scikit-learn's dense kernel eigsh falls back to scipy.linalg.eigh.
        return "dense"
    if eigen_solver != "auto":
        return eigen_solver
    if n <= _DENSE_MAX_N or 4 * n_wanted >= n:
        return "dense"
    return "lanczos"


def _solve(eigen_solver: str, n: int, n_wanted: int, dtype: np.dtype, tol: float, max_iter: int | None,
           random_state: Any, matmat: Callable[[np.ndarray], np.ndarray],
           dense_kernel: Callable[[], np.ndarray], largest_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Top eigenpairs of the centred kernel; ``largest_distance`` (max of D) sets the block solver's scale."""
    solver = _pick_solver(eigen_solver, n, n_wanted)
    if solver == "dense":
        ensure_memory(n * n * dtype.itemsize + 16 * n * dtype.itemsize,
                      f"the dense ({n}, {n}) {dtype} centred kernel", "Use eigen_solver='auto' or 'arpack'.")
        return _dense(dense_kernel(), n_wanted)
    if solver == "arpack":
        return _arpack(matmat, n, n_wanted, tol=tol, max_iter=max_iter, random_state=random_state)
    rng = check_random_state(random_state)
    relative_tol = float(tol) if tol > 0 else _DEFAULT_TOL[dtype]
    max_passes = _DEFAULT_MAX_PASSES if max_iter is None else int(max_iter)
    block = max(_MIN_BLOCK, 2 * n_wanted)
    ensure_memory(2 * 8 * n * (block * (_BLOCKS_PER_CYCLE + 2) + n_wanted),
                  "the block Lanczos basis", "Use fewer points or float32 input.")
    # The solver works on K / max(D)**2, whose entries are at most ~1 whatever the units of D: its Gram
    # matrices and residual norms square the products, which would overflow (or underflow to zero)
    # for distances past ~1e77 (or below ~1e-77) in float64 if K were used as it is.
    scale = largest_distance**2 if largest_distance > 0 else 1.0
    # The dense work between passes is on (n, ~100) blocks: BLAS threads there only fight the
    # native pass's OpenMP threads for the cores (2x slower end to end on 2 cores), so BLAS runs single.
    with threadpool_limits(1, user_api="blas"):
        eigenvalues, eigenvectors = _block_lanczos(lambda block: matmat(block) / scale, n, n_wanted,
                                                   tol=relative_tol, max_passes=max_passes, rng=rng)
    return eigenvalues * scale, eigenvectors


# ------------------------------------------------------------------------------------ device helpers
def _check_host(dist_matrix: Any, name: str = "dist_matrix") -> np.ndarray:
    return check_array(dist_matrix, dtype=[np.float64, np.float32], order="C", input_name=name)


# ------------------------------------------------------------------------------------------ public
def classical_mds(dist_matrix: Any, n_components: int = 2, *, eigen_solver: str = "auto", tol: float = 0,
                  max_iter: int | None = None, random_state: Any = None, device: str = "auto",
                  n_jobs: int | None = None) -> tuple[Any, Any, Any]:
    """Embed a distance matrix by classical MDS, exactly as scikit-learn's Isomap does.

    Equal to ``KernelPCA(n_components, kernel="precomputed", eigen_solver, tol, max_iter)
    .fit_transform(-0.5 * dist_matrix**2)`` including eigenvalue clipping, eigenvector signs (the
    largest-magnitude entry of each eigenvector is positive) and descending order, but the centred
    kernel ``K = -1/2 J (D o D) J`` is never formed: each product with ``K`` is one pass over
    ``dist_matrix`` for a whole block of vectors.

    Parameters
    ----------
    dist_matrix : array-like of shape (n_samples, n_samples)
        Symmetric distance matrix (e.g. geodesic distances), float32 or float64 (other numeric types
        become float64). A torch CUDA tensor or CuPy array is read in place on its GPU.
    n_components : int, default=2
        Number of coordinates; more than ``n_samples`` gives ``n_samples`` (as KernelPCA).
    eigen_solver : {'auto', 'dense', 'arpack'}, default='auto'
        'dense': LAPACK ``eigh`` on the centred kernel written once into a new (n_samples, n_samples)
        array of the input dtype (the one solver that needs that memory). 'arpack': scikit-learn's
        ARPACK call (``eigsh``, which='LA', its ``v0``) on an operator over the implicit kernel, no
        N x N memory. 'auto': 'dense' up to 256 samples or when ``4 * n_components >= n_samples``,
        else isogan's block Lanczos solver (thick restart, Rayleigh-Ritz, blocks of >= 8 vectors per
        pass over ``dist_matrix``), which needs O(n_samples * 128) floats beyond ``dist_matrix``.
    tol : float, default=0
        Convergence tolerance. 'arpack': passed to ``eigsh`` (0 = machine precision). 'auto': every
        returned pair satisfies ``||K x - l x|| <= tol * |l_max|``; 0 means 1e-12 for float64 and 1e-7
        for float32 input. Ignored by 'dense'.
    max_iter : int, default=None
        'arpack': ``eigsh``'s ``maxiter``. 'auto': the most block products (passes over
        ``dist_matrix``), 1000 when None; when reached without convergence a ``ConvergenceWarning``
        is issued and the current Ritz pairs are returned. Ignored by 'dense'.
    random_state : int, RandomState instance or None, default=None
        Seeds the start vectors of the iterative solvers (as KernelPCA's ``random_state``).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the products run. 'cuda' requires a usable GPU (RuntimeError otherwise); 'auto' uses
        one when usable. A host ``dist_matrix`` solved on the GPU is copied there once (its bytes of
        free GPU memory are checked first); a GPU array is read in place and needs a GPU device.
    n_jobs : int, default=None
        CPU threads for the products (None or -1: all).

    Returns
    -------
    embedding : array of shape (n_samples, n_components)
        ``eigenvectors * sqrt(eigenvalues)``, the Isomap embedding.
    eigenvalues : array of shape (n_components,)
        Eigenvalues of ``K`` in descending order, negative or negligible ones set to 0 as
        scikit-learn's ``_check_psd_eigenvalues`` does.
    eigenvectors : array of shape (n_samples, n_components)
        Unit eigenvectors of ``K`` (``KernelPCA.eigenvectors_``).
    All three have the input's dtype and live on the input's device (numpy for host input).

    Raises
    ------
    ValueError
        Non-square, non-symmetric or non-finite ``dist_matrix``; invalid parameters; significantly
        negative eigenvalues among those asked for (scikit-learn's wording).
    MemoryError
        When the solver's memory is not available (bytes named, remedy given).

    See Also
    --------
    mds_fit_state, mds_transform : out-of-sample projection (``Isomap.transform``).
    sklearn.decomposition.KernelPCA : the reference computation.

    Examples
    --------
    >>> import numpy as np
    >>> from isogan import classical_mds
    >>> points = np.array([[0.0], [1.0], [3.0]])
    >>> dist = np.abs(points - points.T)
    >>> embedding, eigenvalues, _ = classical_mds(dist, n_components=1)
    >>> np.round(np.abs(embedding.ravel()), 6).tolist()
    [1.333333, 0.333333, 1.666667]
    """
    _check_scalar_params(n_components, eigen_solver, tol, max_iter)
    if is_device_array(dist_matrix):
        if check_device(device) == "cpu":
            raise ValueError("dist_matrix is a GPU array but device='cpu'; move it to the host first.")
        resolve_device("cuda", "mds")
        device_matrix = cuda_mds.DeviceMatrix(dist_matrix)
        _check_square(device_matrix.shape)
        parts = _classical_mds_cuda(device_matrix, int(n_components), eigen_solver, tol, max_iter, random_state,
                                    lambda: to_host(dist_matrix))
        return tuple(from_host_like(part, dist_matrix) for part in parts)
    resolved = resolve_device(device, "mds")
    dist = _check_host(dist_matrix)
    _check_square(dist.shape)
    if resolved == "cuda":
        return _classical_mds_cuda(cuda_mds.DeviceMatrix.from_host(dist), int(n_components), eigen_solver, tol, max_iter,
                                   random_state, lambda: dist)
    dtype = dist.dtype
    n = dist.shape[0]
    jobs = threads(n_jobs)
    max_asymmetry, largest = _core.mds_symmetry_report(dist, jobs)
    _check_symmetric(max_asymmetry, largest, dtype)
    check_kernel_range(largest, n, dtype, "distances of dist_matrix")
    n_wanted = min(int(n_components), n)
    eigenvalues, eigenvectors = _solve(
        eigen_solver, n, n_wanted, dtype, tol, max_iter, random_state,
        matmat=lambda block: _core.mds_centered_kernel_matmul(dist, np.ascontiguousarray(block), jobs),
        dense_kernel=lambda: _core.mds_centered_kernel(dist, jobs), largest_distance=largest,
    )
    return _finish(eigenvalues, eigenvectors, dtype)


def _classical_mds_cuda(device_matrix: cuda_mds.DeviceMatrix, n_components: int, eigen_solver: str, tol: float,
                        max_iter: int | None, random_state: Any,
                        host_matrix: Callable[[], np.ndarray]) -> tuple[np.ndarray, ...]:
    """classical_mds on a GPU-resident matrix; host (numpy) results."""
    n = device_matrix.shape[0]
    dtype = device_matrix.dtype
    if not np.all(np.isfinite(device_matrix.row_means())):
        raise ValueError("Input dist_matrix contains NaN or infinity.")
    max_asymmetry, largest = device_matrix.symmetry()
    _check_symmetric(max_asymmetry, largest, dtype)
    check_kernel_range(largest, n, dtype, "distances of dist_matrix")
    n_wanted = min(n_components, n)
    ensure_memory(mds_device_product_bytes(n, n_wanted), "the CUDA block products' vectors",
                  "Use fewer components or device='cpu'.", device="cuda")

    def dense_kernel() -> np.ndarray:
        ensure_memory(2 * n * n * dtype.itemsize, f"a host copy of the ({n}, {n}) {dtype} dist_matrix for "
                      "eigen_solver='dense'", "Use eigen_solver='auto'.")
        return _core.mds_centered_kernel(np.ascontiguousarray(host_matrix()), 0)

    eigenvalues, eigenvectors = _solve(eigen_solver, n, n_wanted, dtype, tol, max_iter, random_state,
                                       matmat=device_matrix.centered_matmul, dense_kernel=dense_kernel,
                                       largest_distance=largest)
    return _finish(eigenvalues, eigenvectors, dtype)


def mds_fit_state(dist_matrix: Any, eigenvalues: Any, eigenvectors: Any, *,
                  n_jobs: int | None = None) -> MdsFitState:
    """Collect what :func:`mds_transform` needs: the training kernel's centring statistics.

    One pass over ``dist_matrix`` computes the means of ``-0.5 * dist_matrix**2`` (KernelCenterer's
    ``K_fit_rows_`` and ``K_fit_all_``).

    Parameters
    ----------
    dist_matrix : array-like of shape (n_samples, n_samples)
        The distance matrix given to :func:`classical_mds` (host or GPU array).
    eigenvalues : array-like of shape (n_components,)
        Eigenvalues returned by :func:`classical_mds`.
    eigenvectors : array-like of shape (n_samples, n_components)
        Eigenvectors returned by :func:`classical_mds`.
    n_jobs : int, default=None
        CPU threads (None or -1: all).

    Returns
    -------
    MdsFitState
        Host (numpy) arrays.
    """
    if is_device_array(dist_matrix):
        device_matrix = cuda_mds.DeviceMatrix(dist_matrix)
        _check_square(device_matrix.shape)
        row_means = device_matrix.row_means()
    else:
        dist = _check_host(dist_matrix)
        _check_square(dist.shape)
        row_means = _core.mds_squared_row_means(dist, threads(n_jobs))
    eigenvalues = to_host(eigenvalues) if is_device_array(eigenvalues) else np.asarray(eigenvalues)
    eigenvectors = to_host(eigenvectors) if is_device_array(eigenvectors) else np.asarray(eigenvectors)
    if eigenvectors.ndim != 2 or eigenvectors.shape[0] != row_means.shape[0] or eigenvalues.shape != (
            eigenvectors.shape[1],):
        raise ValueError(
            f"eigenvalues {eigenvalues.shape} and eigenvectors {eigenvectors.shape} do not match a "
            f"({row_means.shape[0]}, {row_means.shape[0]}) dist_matrix."
        )
    return MdsFitState(row_means, float(row_means.mean()), eigenvalues, eigenvectors)


def mds_transform(geodesic_to_train: Any, fit_state: MdsFitState, *, n_jobs: int | None = None) -> Any:
    """Project new points given their geodesic distances to the training points.

    Equal to ``KernelPCA.transform(-0.5 * geodesic_to_train**2)`` of the fitted KernelPCA inside
    scikit-learn's Isomap: the kernel rows are centred with the training statistics and the
    per-row means, then projected on ``eigenvectors / sqrt(eigenvalues)`` (zero eigenvalues give
    zero coordinates). Two passes over ``geodesic_to_train``, nothing (M, N) allocated.

    Parameters
    ----------
    geodesic_to_train : array-like of shape (n_queries, n_samples)
        Geodesic distances from each new point to every training point (host or GPU array).
    fit_state : MdsFitState
        From :func:`mds_fit_state`.
    n_jobs : int, default=None
        CPU threads (None or -1: all).

    Returns
    -------
    embedding : array of shape (n_queries, n_components)
        In ``geodesic_to_train``'s dtype, on its device.
    """
    n_samples = fit_state.kernel_row_means.shape[0]
    eigenvalues = np.asarray(fit_state.eigenvalues, dtype=np.float64)
    scaled_vectors = np.zeros(fit_state.eigenvectors.shape, dtype=np.float64)
    nonzero = np.flatnonzero(eigenvalues)
    scaled_vectors[:, nonzero] = fit_state.eigenvectors[:, nonzero] / np.sqrt(eigenvalues[nonzero])
    if is_device_array(geodesic_to_train):
        device_matrix = cuda_mds.DeviceMatrix(geodesic_to_train)
        shape, dtype = device_matrix.shape, device_matrix.dtype
        if len(shape) != 2 or shape[1] != n_samples:
            raise ValueError(f"geodesic_to_train must have shape (n_queries, {n_samples}), got {shape}.")
        query_means = device_matrix.row_means()
        if not np.all(np.isfinite(query_means)):
            # check_array's rejection on the host path; a GPU array is checked through its row sums.
            raise ValueError("Input geodesic_to_train contains NaN or infinity.")
        products = device_matrix.squared_matmul(scaled_vectors)
    else:
        geodesic = _check_host(geodesic_to_train, "geodesic_to_train")
        shape, dtype = geodesic.shape, geodesic.dtype
        if shape[1] != n_samples:
            raise ValueError(f"geodesic_to_train must have shape (n_queries, {n_samples}), got {shape}.")
        if geodesic.size:
            check_kernel_range(float(geodesic.max()), n_samples, dtype, "geodesic distances to the training points")
        jobs = threads(n_jobs)
        products = _core.mds_squared_matmul(geodesic, scaled_vectors, jobs)
        query_means = _core.mds_squared_row_means(geodesic, jobs)
    column_sums = scaled_vectors.sum(axis=0)
    projected = (products - (fit_state.kernel_row_means @ scaled_vectors)[None, :]
                 - np.outer(query_means - fit_state.kernel_mean, column_sums))
    projected = projected.astype(dtype, copy=False)
    return from_host_like(projected, geodesic_to_train) if is_device_array(geodesic_to_train) else projected
