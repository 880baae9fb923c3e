"""pytest-benchmark suites: isogan against scikit-learn / eager PyTorch, always in the same run."""
