"""Feature masks (superpixels or a grid) for the perturbation explainers LIME and Kernel SHAP."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Segmentation = Literal["slic", "grid"]


def grid_mask(h: int, w: int, cell: int) -> torch.Tensor:
    """(h, w) long tensor numbering square cells of side ``cell`` row by row from 0."""
    rows = torch.arange(h) // cell
    cols = torch.arange(w) // cell
    n_cols = (w + cell - 1) // cell
    return rows.view(-1, 1) * n_cols + cols.view(1, -1)


def slic_mask(image: torch.Tensor, n_segments: int, compactness: float) -> torch.Tensor:
    """(h, w) long superpixel labels from 0 for one (C, h, w) image, SLIC on its min-max rescaled values."""
    from skimage.segmentation import slic

    x = image.detach().float().cpu().numpy()
    x = (x - x.min()) / max(float(x.max() - x.min()), 1e-12)  # normalised input back to about [0, 1]
    arr = np.moveaxis(x, 0, -1)
    labels = slic(arr, n_segments=n_segments, compactness=compactness, start_label=0,
                  channel_axis=-1, convert2lab=arr.shape[-1] == 3)
    _, dense = np.unique(labels, return_inverse=True)  # consecutive ids 0..n-1
    return torch.from_numpy(dense.reshape(labels.shape).astype(np.int64))


def feature_mask(image: torch.Tensor, kind: Segmentation, n_segments: int, cell: int,
                 compactness: float = 10.0) -> torch.Tensor:
    """(1, 1, h, w) mask shared by all channels of one (C, h, w) image, on the image's device.

    SLIC can collapse to a handful of segments on textureless or noise-like images; it is retried with
    higher compactness (towards a regular grid) and falls back to a grid of about ``n_segments`` cells.
    """
    h, w = image.shape[-2:]
    m = None
    if kind == "slic":
        for c in (compactness, compactness * 10, compactness * 100):
            m = slic_mask(image, n_segments, c)
            if int(m.max()) + 1 >= max(2, n_segments // 4):
                break
        else:
            m = None
    if m is None:
        side = cell if kind == "grid" else max(1, round((h * w / n_segments) ** 0.5))
        m = grid_mask(h, w, side)
    return m.view(1, 1, h, w).to(image.device)


def attribute_per_segment(method, inputs: torch.Tensor, baselines: torch.Tensor,
                          targets: torch.Tensor, params, seed: int) -> torch.Tensor:
    """Run a captum surrogate method (Lime, KernelShap) image by image over its segment mask.

    Returns (B, H, W): the channel mean (every channel of a segment gets the same value)."""
    from ._common import seeded

    maps = []
    with seeded(seed, inputs.device), torch.no_grad():
        for x, b, t in zip(inputs, baselines, targets, strict=True):
            mask = feature_mask(x, params.segmentation, params.n_segments, params.cell)
            attr = method.attribute(
                x.unsqueeze(0), baselines=b.unsqueeze(0), target=t.view(1), feature_mask=mask,
                n_samples=params.n_samples, perturbations_per_eval=params.perturbations_per_eval,
            )
            maps.append(attr.detach().mean(dim=1))
    return torch.cat(maps).float().cpu()
