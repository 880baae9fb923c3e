"""The Isomap estimator (owner: estimator)."""

class Isomap:
    pass
