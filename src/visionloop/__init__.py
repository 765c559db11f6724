"""visionloop: a local-first data engine for computer vision."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("visionloop")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
