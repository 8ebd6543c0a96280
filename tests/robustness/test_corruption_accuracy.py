"""The same model's accuracy under our corruption and under the reference's, on the same 120 held-out digits at
severity 3 (MRI artefacts: 60 digits, severity 5 = TorchIO's default ranges): each accuracy must lie inside the
other's Wilson 95 % interval. The reference images go through ``imagecorruptions``' own path (uint8 in, the corruption,
truncation to uint8), as its users feed them to a model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchio as tio
from PIL import Image
from references import corruptions, frost_files

from audit.robustness.corruptions import CORRUPTIONS, IMAGENET_C, IMAGENET_C_EXTRA, frost
from audit.scoring.ranking import wilson

N = 120


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum()), len(y)


def _within_each_other(a: tuple[int, int], b: tuple[int, int], label: str) -> None:
    pa, pb = a[0] / a[1], b[0] / b[1]
    lo_a, hi_a = wilson(*a)
    lo_b, hi_b = wilson(*b)
    assert lo_b <= pa <= hi_b and lo_a <= pb <= hi_a, f"{label}: ours {pa:.3f} {(lo_a, hi_a)}, reference {pb:.3f}"


@pytest.fixture(scope="module")
def held_out(digits):
    return digits.x_test[:N], digits.y_test[:N]


def test_accuracy_under_each_imagenet_c_corruption_agrees_with_reference(digit_model, held_out) -> None:
    x, y = held_out
    ic = corruptions()
    uint8 = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    x8 = torch.from_numpy(uint8).permute(0, 3, 1, 2).float() / 255
    textured = frost.frost_corruption(frost.load_textures(frost_files()))
    clean = _accuracy(digit_model, x8, y)
    drops = 0
    for r, name in enumerate(IMAGENET_C + IMAGENET_C_EXTRA):
        np.random.seed(r)
        ref = np.stack([np.uint8(np.clip(np.asarray(getattr(ic, name)(Image.fromarray(im), 3), float), 0, 255))
                        for im in uint8])
        ref_acc = _accuracy(digit_model, torch.from_numpy(ref).permute(0, 3, 1, 2).float() / 255, y)
        c = textured if name == "frost" else CORRUPTIONS[name]
        ours = _accuracy(digit_model, c(x8, 3, torch.Generator().manual_seed(r)), y)
        _within_each_other(ours, ref_acc, name)
        drops += ours[0] < clean[0] - 0.1 * N
    assert drops >= 5  # the comparison is not vacuous: several corruptions cost the model > 10 points (6 do)


def test_accuracy_under_mri_artefacts_agrees_with_torchio(digit_model, held_out) -> None:
    x, y = held_out[0][:60], held_out[1][:60]  # TorchIO costs ~14 ms per image and transform
    references = {"bias_field": tio.RandomBiasField(coefficients=0.5, order=3),
                  "ghosting": tio.RandomGhosting(num_ghosts=(4, 10), axes=(0, 1), intensity=(0.5, 1)),
                  "spike": tio.RandomSpike(num_spikes=(1, 1), intensity=(1, 3))}
    for name, t in references.items():
        torch.manual_seed(11)  # TorchIO draws from torch's global generator
        ref = torch.stack([t(tio.ScalarImage(tensor=im[..., None])).data[..., 0] for im in x]).clamp(0, 1)
        ours = CORRUPTIONS[name](x, 5, torch.Generator().manual_seed(11))
        _within_each_other(_accuracy(digit_model, ours, y), _accuracy(digit_model, ref, y), name)
