"""Resampling with torchvision's tensor resize (``data.resampler = "torch"``), as Hugging Face's default
(torchvision-backend) image processors do it: ``torchvision.transforms.v2.functional.resize`` with antialias on
the (C, H, W) tensor, in uint8 for 8-bit images (torchvision rounds and clamps the result back to uint8, as the
processor's tensors are) and in float32 otherwise; crops are integer slices, as theirs are. The filter names map
as Hugging Face maps Pillow's (nearest is NEAREST_EXACT, Pillow's rule)."""

from __future__ import annotations

import numpy as np
import torch

from .decode import DecodedImage
from .geometry import Fit, place

#: filter name -> torchvision's InterpolationMode member
TORCH_FILTERS = {"nearest": "NEAREST_EXACT", "bilinear": "BILINEAR", "bicubic": "BICUBIC", "lanczos": "LANCZOS"}


def _resized(t: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """``t`` (C, H, W) at ``size`` = (h, w) (unchanged when it has that size already)."""
    if tuple(t.shape[-2:]) == size:
        return t
    # imported here: torchvision's import pulls in torch._dynamo (about a third of `import audit.api`), and only
    # data.resampler = "torch" resamples with it
    from torchvision.transforms.v2 import functional as tvF

    mode = getattr(tvF.InterpolationMode, TORCH_FILTERS[interpolation])
    return tvF.resize(t, list(size), interpolation=mode, antialias=True)


def fit_torch(d: DecodedImage, fit: Fit, fill: float, interpolation: str) -> np.ndarray:
    """A decoded image -> float32 (H, W, C) in [0, 1] at the input size, resampled by torchvision."""
    if d.pil is not None:
        a = np.array(d.pil)  # a writable copy for torch
        t = torch.from_numpy(a if a.ndim == 3 else a[:, :, None]).permute(2, 0, 1)
    else:
        assert d.array is not None
        t = torch.from_numpy(np.ascontiguousarray(d.array, dtype=np.float32)).permute(2, 0, 1)
    _, _, nw, nh = fit.dst
    if fit.scaled is not None:
        sw, sh = fit.scaled
        (cx, cy), (H, W) = fit.offset, fit.size
        t = _resized(t, (sh, sw), interpolation)[:, cy:cy + H, cx:cx + W]
    elif fit.whole:
        t = _resized(t, (nh, nw), interpolation)
    else:  # refused by the config check: a sub-pixel box is resampled by Pillow only
        raise ValueError("the torch resampler cannot resample a sub-pixel box (center_crop without resize_to)")
    arr = t.permute(1, 2, 0).numpy()
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    return place(arr, fit, fill)
