"""The random corruptions against their references in distribution: with each side drawing its own random
numbers, per-image statistics (PSNR against the clean image, mean and standard deviation of the corrupted
image, standard deviation of the change) must agree in their means within four standard errors of the
difference (plus 1e-3 for statistics that barely vary). Seeds are fixed, so the outcome is deterministic; a
wrong noise scale, a wrong angle range or a wrong texture draw moves these means by many standard errors.
(Given equal draws, every corruption matches exactly: test_corruptions_exact.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchio as tio
from PIL import Image
from references import corruptions, frost_files
from skimage import data, transform

from audit.robustness.corruptions import CORRUPTIONS, frost

SIZE = 32
DRAWS = 2


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    out = []
    for p in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket()):
        for k in range(3):
            h, w = p.shape[:2]
            y0, x0 = (k * 61) % (h - 200), (k * 89) % (w - 200)
            out.append((transform.resize(p[y0:y0 + 200, x0:x0 + 200], (SIZE, SIZE), anti_aliasing=True) * 255)
                       .astype(np.uint8))
    return np.stack(out)


def _stats(corrupted: np.ndarray, clean: np.ndarray) -> dict[str, np.ndarray]:
    n = len(corrupted)
    c, x = corrupted.reshape(n, -1), clean.reshape(n, -1)
    mse = ((c - x) ** 2).mean(1)
    return {"psnr": 10 * np.log10(1 / np.maximum(mse, 1e-10)), "mean": c.mean(1), "std": c.std(1),
            "change_std": (c - x).std(1)}


def _agree(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray], label: str) -> None:
    for key, a in ours.items():
        b = ref[key]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert abs(a.mean() - b.mean()) <= 4 * se + 1e-3, f"{label} {key}: {a.mean():.4f} vs {b.mean():.4f}"


RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur", "snow",
          "fog", "spatter", "elastic_transform", "frost")


@pytest.mark.parametrize("severity", [2, 5])
def test_random_imagenet_c_corruptions_match_reference_statistics(photos: np.ndarray, severity: int) -> None:
    ic = corruptions()
    clean = np.concatenate([photos / 255.0] * DRAWS)
    x = torch.from_numpy(photos).permute(0, 3, 1, 2).float() / 255
    textured = frost.frost_corruption(frost.load_textures(frost_files()))
    for name in RANDOM:
        ref = []
        for r in range(DRAWS):
            np.random.seed(1000 * severity + r)
            ref += [np.clip(np.asarray(getattr(ic, name)(Image.fromarray(im), severity), float), 0, 255) / 255
                    for im in photos]
        c = textured if name == "frost" else CORRUPTIONS[name]
        ours = torch.cat([c(x, severity, torch.Generator().manual_seed(r)) for r in range(DRAWS)])
        _agree(_stats(ours.permute(0, 2, 3, 1).double().numpy(), clean), _stats(np.stack(ref), clean),
               f"{name} s{severity}")


def test_random_mri_artefacts_match_torchio_statistics(photos: np.ndarray) -> None:
    """Severity 5 = TorchIO's default ranges, except that we always add one spike (TorchIO's num_spikes=1 draws
    0 or 1). TorchIO's RandomMotion is left out: on a 2-D image its k-space
    segments run along the singleton axis, so it returns one rigidly moved copy, not a motion artefact)."""
    grey = torch.from_numpy(photos.mean(-1) / 255.0).float()[:, None]
    clean = np.concatenate([grey.numpy()] * DRAWS)
    references = {"bias_field": tio.RandomBiasField(coefficients=0.5, order=3),
                  "ghosting": tio.RandomGhosting(num_ghosts=(4, 10), axes=(0, 1), intensity=(0.5, 1)),
                  "spike": tio.RandomSpike(num_spikes=(1, 1), intensity=(1, 3))}
    for name, t in references.items():
        torch.manual_seed(7)  # TorchIO draws from torch's global generator
        ref = np.stack([t(tio.ScalarImage(tensor=im[..., None])).data[..., 0].clamp(0, 1).numpy()
                        for _ in range(DRAWS) for im in grey])
        ours = torch.cat([CORRUPTIONS[name](grey, 5, torch.Generator().manual_seed(r)) for r in range(DRAWS)])
        _agree(_stats(ours.numpy(), clean), _stats(ref, clean), name)
