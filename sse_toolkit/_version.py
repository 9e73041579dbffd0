"""Parser layer (below all others): the package version, read by pyproject and ``--version``."""

__all__ = ["__version__"]

__version__ = "0.1.0"
