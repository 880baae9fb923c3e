"""Fixtures shared by the estimator tests."""

from __future__ import annotations

from typing import Any

import pytest

from isogan import isomap as isomap_module
from isogan import mds as mds_module


@pytest.fixture
def mds_inputs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``dist_matrix`` handed to :func:`isogan.mds.classical_mds` during the test, in call order."""
    received: list[Any] = []
    original = mds_module.classical_mds

    def recording_classical_mds(dist_matrix, *args, **kwargs):
        received.append(dist_matrix)
        return original(dist_matrix, *args, **kwargs)

    monkeypatch.setattr(mds_module, "classical_mds", recording_classical_mds)
    monkeypatch.setattr(isomap_module, "classical_mds", recording_classical_mds)
    return received
