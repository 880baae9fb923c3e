"""Sub-commands of the ``isogan`` command line (see :mod:`isogan.cli`)."""
