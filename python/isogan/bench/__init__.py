"""``isogan bench``: isogan against scikit-learn side by side (:mod:`~isogan.bench.harness`) and the
landmark Isomap scaling curve from 10k to 1M points (:mod:`~isogan.bench.scaling`)."""
