"""Robustness and out-of-distribution checks (issue 26), as pure functions on (B, C, H, W) batches in [0, 1]
(before mean/std normalisation), on the batch's device, with explicit ``torch.Generator`` seeding.

- ``corruptions``: the registry of image corruptions (ImageNet-C's 19, acquisition ones, TorchIO's MRI
  artefacts; a ``plugins.Registry``) and ``corrupt(x, name, severity, generator)``
- ``attacks`` / ``apgd``: PGD (L-inf, L2) and APGD-CE; ``Normalised`` puts the normalisation inside the model
- ``ce``: corruption error, mean CE and relative mCE against a baseline
- ``masking``: gradient-masking checks and robust accuracy that is only reported when they pass
- ``ood``: OOD scores (MSP, energy, max-logit, Mahalanobis, k-NN; a ``plugins.Registry``) and ``model_outputs``; ``farood``: built-in
  far-OOD sets; ``stats``: AUROC with a DeLong interval, FPR at 95 % TPR with a bootstrap interval
"""

from __future__ import annotations

from .apgd import APGDConfig, apgd
from .attacks import AttackOutcome, Normalised, PGDConfig, pgd
from .ce import CorruptionErrors, corruption_errors
from .corruptions import CORRUPTIONS, IMAGENET_C, IMAGENET_C_EXTRA, Corruption, corrupt
from .farood import far_ood
from .masking import MaskingConfig, MaskingVerdict, RobustAccuracy, gradient_masking_checks, robust_accuracy
from .ood import DETECTORS, Outputs, detector, model_outputs
from .stats import Separation, auroc_delong, fpr_at_tpr, separation

__all__ = [
    "CORRUPTIONS", "DETECTORS", "IMAGENET_C", "IMAGENET_C_EXTRA", "APGDConfig", "AttackOutcome", "Corruption",
    "CorruptionErrors", "MaskingConfig", "MaskingVerdict", "Normalised", "Outputs", "PGDConfig", "RobustAccuracy",
    "Separation", "apgd", "auroc_delong", "corrupt", "corruption_errors", "detector", "far_ood", "fpr_at_tpr",
    "gradient_masking_checks", "model_outputs", "pgd", "robust_accuracy", "separation",
]
