"""Decoded image -> normalised model input tensor, and back for display."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..config import DataConfig
from .decode import DecodedImage, DecodeOptions
from .geometry import Resize, fit_float, fit_pil, geometry_of, plan_fit
from .resample import fit_torch


@dataclass(frozen=True)
class Preprocess:
    """Decoded image -> normalised float tensor (C, H, W). ``resize`` fits the image to ``size`` (see
    ``geometry.py``; ROI boxes and masks follow the same geometry) with the ``interpolation`` filter of the
    ``resampler`` library; ``decode`` holds the decoding options the dataset uses (value range, DICOM window)."""

    size: tuple[int, int] | None
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: Resize = "stretch"
    pad_value: float = 0.0
    decode: DecodeOptions = DecodeOptions()  # noqa: RUF009 - frozen, so one shared default is safe
    interpolation: str = "bilinear"
    resampler: str = "pillow"

    def fit(self, img: DecodedImage | Image.Image) -> np.ndarray:
        """Float32 (H, W, C) intensities in [0, 1] at the model-input size (8-bit images resized by Pillow in 8 bits,
        exactly as earlier versions did; others as float32)."""
        d = DecodedImage(pil=img) if isinstance(img, Image.Image) else img
        if self.size is None:
            return d.to_array()
        fit = plan_fit(*d.size, self.size, self.resize)
        if self.resampler == "torch":
            return fit_torch(d, fit, self.pad_value, self.interpolation)
        if d.pil is not None:
            return fit_pil(d.pil, fit, self.pad_value, self.interpolation)
        assert d.array is not None
        return fit_float(d.array, fit, self.pad_value, self.interpolation)

    def __call__(self, img: DecodedImage | Image.Image) -> torch.Tensor:
        arr = self.fit(img)
        t = torch.from_numpy(arr.transpose(2, 0, 1).copy())
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (t - mean) / std

    def unnormalize(self, x: torch.Tensor) -> np.ndarray:
        """(C,H,W) tensor -> (H,W,3) float image in [0,1] for display."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        img = (x.detach().cpu().float() * std + mean).clamp(0, 1).numpy().transpose(1, 2, 0)
        return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def make_preprocess(d: DataConfig) -> Preprocess:
    c = d.channels
    mean = tuple(d.mean) if d.mean else (0.0,) * c
    std = tuple(d.std) if d.std else (1.0,) * c
    if len(mean) == 1:
        mean = mean * c
    if len(std) == 1:
        std = std * c
    return Preprocess(d.image_size, c, mean, std, resize=geometry_of(d), pad_value=d.pad_value,
                      decode=DecodeOptions(value_range=d.value_range, window=d.window),
                      interpolation=d.interpolation, resampler=d.resampler)
