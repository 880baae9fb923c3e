"""matplotlib, an optional dependency (``pip install "isogan[plot]"``), behind one import."""

from __future__ import annotations

from types import ModuleType

PLOT_EXTRA_HINT = 'pip install "isogan[plot]"'


def pyplot() -> ModuleType:
    """Return ``matplotlib.pyplot`` on the non-interactive Agg backend.

    Raises
    ------
    ImportError
        Naming the extra to install when matplotlib is missing.
    """
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(f"Drawing plots needs matplotlib: {PLOT_EXTRA_HINT} (or pip install matplotlib).") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

