"""A model-independent second embedding for slice discovery: what a user without a foundation model can compute
from the pixels alone (no weights to download), standardised per dimension over the sets it is compared on.

    properties  the data checks' pixel properties (brightness, contrast, sharpness, noise, blockiness, border
                darkness, colour casts: audit.datachecks.properties.pixel_properties)
    colour      mean and standard deviation of each RGB channel and a 12-bin hue histogram weighted by saturation
    gradients   a histogram of oriented gradients (skimage.feature.hog: 9 orientations, 8x8-pixel cells, 2x2-cell
                blocks, L2-Hys), i.e. shape, orientation and texture

Domino found that an embedding other than the audited model's own features finds more slices (its section 5.1):
the model maps what it never saw onto what it knows, so its features may not set a slice apart.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2hsv
from skimage.feature import hog

from audit.slices import image_property_columns


def _colour(img: np.ndarray) -> np.ndarray:
    hsv = rgb2hsv(img)
    hist, _ = np.histogram(hsv[..., 0], bins=12, range=(0.0, 1.0), weights=hsv[..., 1])
    hist = hist / max(hist.sum(), 1e-9)
    return np.concatenate([img.mean((0, 1)), img.std((0, 1)), hist])


def descriptor(images: np.ndarray) -> np.ndarray:
    """(N, D) descriptors of uint8 RGB images (N, H, W, 3), not yet standardised (``standardise`` does that over
    the sets compared together)."""
    f = images.astype(np.float64) / 255.0
    props = image_property_columns(images)
    prop = np.stack([np.nan_to_num(v.astype(np.float64)) for v in props.values()], axis=1)
    colour = np.stack([_colour(img) for img in f])
    grads = np.stack([hog(img.mean(2), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
                      for img in f])
    return np.concatenate([prop, colour, grads], axis=1)


def standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)
