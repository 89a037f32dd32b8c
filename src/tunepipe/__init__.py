"""tunepipe core library: data to a tuned, evaluated, exported Keras model.

The core never imports ``kfp``: every step is a plain function over paths, frames and a
typed configuration, so it can be tested without Kubeflow and reused by any orchestrator.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tunepipe")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
