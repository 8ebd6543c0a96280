"""The reference implementations, importable in this environment.

``imagecorruptions`` 1.1.2 (Apache-2.0) was written for older libraries: it imports ``pkg_resources`` (gone from
setuptools >= 81), calls ``skimage.filters.gaussian(..., multichannel=True)`` (removed in scikit-image 0.19) and
``np.float_`` (removed in NumPy 2). ``corruptions()`` loads it with those three names supplied for its module
only (nothing global is left changed), so its arithmetic runs as written.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import warnings
from functools import cache

import numpy as np
import skimage.filters


class _NumpyCompat(types.ModuleType):
    """NumPy as the reference saw it (``np.float_`` = float64)."""

    float_ = np.float64

    def __getattr__(self, name: str):
        return getattr(np, name)


def _gaussian(image, sigma=1, *args, multichannel=None, **kwargs):
    if multichannel:
        kwargs["channel_axis"] = -1
    return skimage.filters.gaussian(image, sigma, *args, **kwargs)


@cache
def corruptions() -> types.ModuleType:
    """``imagecorruptions.corruptions`` with its three outdated names supplied."""
    shim = None
    if importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda pkg, rel: os.path.join(  # type: ignore[attr-defined]
            os.path.dirname(sys.modules[pkg].__file__), rel)
        sys.modules["pkg_resources"] = shim
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            mod = importlib.import_module("imagecorruptions.corruptions")
    finally:
        if shim is not None:
            del sys.modules["pkg_resources"]
    mod.gaussian = _gaussian
    mod.np = _NumpyCompat("numpy")
    return mod


def frost_files() -> list[str]:
    """The reference's frost textures (it draws from the first five only)."""
    folder = os.path.join(os.path.dirname(corruptions().__file__), "frost")
    return [os.path.join(folder, f) for f in ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg",
                                               "frost5.jpg", "frost6.jpg")]
