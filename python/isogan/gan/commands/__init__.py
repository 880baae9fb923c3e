"""Command-line entry points of the GAN: ``isogan demo`` and ``isogan train``."""
