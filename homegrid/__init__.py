"""homegrid: the integrated home energy app, open and local-first."""

__version__ = "0.1.0"

__all__ = ["__version__"]
