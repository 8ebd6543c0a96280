"""Whether an explainer's maps explain the audited model: the measurements behind explanation_sanity and
faithfulness, and the gate the attribution rules pass before they judge a map (not a rule kind).

- Model-parameter randomisation (Adebayo et al. 2018): the maps after the top layers are re-initialised, compared
  with the trained model's by the Spearman correlation of |map|; a map that barely changes does not explain the
  model.
- Deletion / insertion (Petsiuk et al. 2018): the target probability as the most attributed pixels are replaced by a
  baseline (or put back onto it), against random pixel orders. The baseline must remove information on the audited
  data: ``choose_baseline`` measures, per candidate, on how many samples replacing the whole image lowers the target
  score by ``min_drop`` of its value or more (relative, so that a segmentation's soft class area of a few per cent
  counts as a class probability does), and ``auto`` takes the candidate that does so most often (a blur keeps a
  64 px photograph's colours, and with them the prediction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..engine.probe import ModelProbe
from ..errors import ExplainerError
from ..maps.stats import spearman_abs, ssim_abs, tie_groups
from ._shortcuts import chunk_rows, explainer_title, fill_region, gaussian_blur, rnd

BaselineName = Literal["blur", "mean", "zero", "noise"]
BASELINES: tuple[BaselineName, ...] = ("blur", "mean", "zero", "noise")
BASELINE_WORDS = {"blur": "a Gaussian blur of the image", "mean": "the data set's mean image",
                  "zero": "the all-zero input (the normalisation's mean colour)",
                  "noise": "noise with the image's colour statistics"}
NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d,
               nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm)


# ---- baselines --------------------------------------------------------------------------------------------------

def baseline_images(name: BaselineName, x: torch.Tensor, probe: ModelProbe, blur_sigma: float,
                    generator: torch.Generator) -> torch.Tensor:
    """The baseline of each image of ``x`` (n, C, H, W); ``blur_sigma`` is a fraction of the shorter side."""
    if name == "blur":
        return gaussian_blur(x, blur_sigma * min(x.shape[-2:]))
    if name == "zero":
        return torch.zeros_like(x)
    if name == "mean":
        mean = probe.dataset_mean if probe.dataset_mean is not None else x.mean(0)
        return mean.to(x.dtype).expand_as(x).clone()
    return fill_region(x, torch.ones(x.shape[-2:], dtype=torch.bool), "noise", generator=generator)


@dataclass(frozen=True)
class BaselineChoice:
    name: str
    base: torch.Tensor  # (n, C, H, W)
    informative: np.ndarray  # (n,) bool: the whole baseline lowers the target probability by min_drop or more
    candidates: dict[str, dict[str, Any]]  # per baseline tried: n_informative, mean_drop

    def words(self) -> str:
        """How each candidate did, for a message: "blur 0 of 32, mean 28 of 32"."""
        n = len(self.informative)
        return ", ".join(f"{k} {c['n_informative']} of {n}" for k, c in self.candidates.items())


def choose_baseline(probe: ModelProbe, x: torch.Tensor, targets: np.ndarray, how: str, blur_sigma: float,
                    min_drop: float, seed: int) -> BaselineChoice:
    """The baseline that removes information on these images: ``how`` names one, or ``auto`` tries every one of
    ``BASELINES`` and keeps the one whose full replacement lowers the target score by ``min_drop`` of its value on
    the most samples (ties: the earlier in ``BASELINES``)."""
    names = list(BASELINES) if how == "auto" else [how]
    p_image = probe.task.target_scores(probe.probs(x), targets)
    best: tuple[int, str, torch.Tensor, np.ndarray] | None = None
    candidates: dict[str, dict[str, Any]] = {}
    for name in names:
        base = baseline_images(name, x, probe, blur_sigma, torch.Generator().manual_seed(seed))  # type: ignore[arg-type]
        drop = p_image - probe.task.target_scores(probe.probs(base), targets)
        informative = drop >= min_drop * p_image
        candidates[name] = {"n_informative": int(informative.sum()), "mean_drop": rnd(float(drop.mean()))}
        if best is None or int(informative.sum()) > best[0]:
            best = (int(informative.sum()), name, base, informative)
    assert best is not None
    return BaselineChoice(best[1], best[2], best[3], candidates)


# ---- deletion / insertion ---------------------------------------------------------------------------------------

def _ranks(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, H*W) rank of each pixel (0 = most attributed); ties (``tie_groups``) and non-finite values broken at
    random."""
    n = len(maps)
    flat = maps.reshape(n, -1)
    out = np.empty(flat.shape, dtype=np.int64)
    for i in range(n):
        order = np.lexsort((rng.random(flat.shape[1]), tie_groups(flat[i])))
        out[i, order] = np.arange(flat.shape[1])
    return out


def perturbation_curves(probe: ModelProbe, x: torch.Tensor, base: torch.Tensor, ranks: np.ndarray,
                        targets: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Target-class probability after each deletion / insertion step: two arrays (n, steps + 1)."""
    n, C, H, W = x.shape
    HW = H * W
    ks = np.round(np.linspace(0, 1, steps + 1) * HW).astype(np.int64)
    per_sample = 2 * (steps + 1) * (2 * C + 1) * HW
    m = chunk_rows(n, per_sample)
    dele = np.zeros((n, steps + 1))
    ins = np.zeros((n, steps + 1))

    def perturb(b: torch.Tensor) -> torch.Tensor:
        keep = b[:, 2 * C:]
        return b[:, :C] * keep + b[:, C:2 * C] * (1.0 - keep)

    for s in range(0, n, m):
        e = min(n, s + m)
        r = torch.from_numpy(ranks[s:e]).view(e - s, 1, H, W)
        k = torch.from_numpy(ks).view(1, steps + 1, 1, 1)
        keep_del = (r >= k).float()  # (m, S+1, H, W): pixels not yet deleted
        keep_ins = (r < k).float()  # pixels already inserted
        keep = torch.stack([keep_del, keep_ins], dim=1).reshape(-1, 1, H, W)  # (m*2*(S+1), 1, H, W)
        reps = 2 * (steps + 1)
        xs = x[s:e].repeat_interleave(reps, dim=0)
        bs = base[s:e].repeat_interleave(reps, dim=0)
        packed = torch.cat([xs, bs, keep], dim=1)
        probs = probe.map_over_perturbations(packed, perturb)
        t = np.repeat(targets[s:e], reps)
        pt = probe.task.target_scores(probs, t).reshape(e - s, 2, steps + 1)
        dele[s:e], ins[s:e] = pt[:, 0], pt[:, 1]
    return dele, ins


def auc(curve: np.ndarray) -> np.ndarray:
    steps = curve.shape[-1] - 1
    return (curve[..., 1:] + curve[..., :-1]).sum(-1) / (2.0 * steps)


@dataclass(frozen=True)
class RandomOrders:
    """Deletion and insertion AUCs of random pixel orders, averaged over repeats (n,), and their mean curves."""

    deletion: np.ndarray
    insertion: np.ndarray
    curves: list[tuple[np.ndarray, np.ndarray]]


def random_orders(probe: ModelProbe, x: torch.Tensor, base: torch.Tensor, targets: np.ndarray, steps: int,
                  repeats: int, rng: np.random.Generator) -> RandomOrders:
    H, W = x.shape[-2:]
    dels, inss, curves = [], [], []
    for _ in range(repeats):
        rr = np.stack([rng.permutation(H * W) for _ in range(len(x))])
        d, i = perturbation_curves(probe, x, base, rr, targets, steps)
        dels.append(auc(d))
        inss.append(auc(i))
        curves.append((d, i))
    return RandomOrders(np.mean(dels, axis=0), np.mean(inss, axis=0), curves)


# ---- model-parameter randomisation ------------------------------------------------------------------------------

def layer_groups(probe: ModelProbe) -> list[list[str]]:
    """The model's parameter layers from the input to the output, a normalisation layer joined to the layer before
    it (a conv and its batch norm are one step: a "layer" as Adebayo et al. count them)."""
    modules = dict(probe.model.named_modules())
    groups: list[list[str]] = []
    for name in probe.parameter_layers():
        if groups and isinstance(modules.get(name), NORM_LAYERS):
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def similarity(trained: np.ndarray, randomised: np.ndarray, rows: Sequence[int]) -> tuple[float, float, int]:
    """Mean Spearman of |maps| and mean SSIM over ``rows`` (samples whose trained map is comparable), and how many
    randomised maps are constant (counted as changed completely: similarity 0)."""
    sps, sss, n_const = [], [], 0
    for i in rows:
        if np.ptp(np.abs(randomised[i])) == 0 or not np.isfinite(randomised[i]).all():
            n_const += 1
        s = spearman_abs(trained[i], randomised[i])
        q = ssim_abs(trained[i], randomised[i])
        sps.append(0.0 if s is None else s)
        if q is not None:
            sss.append(q)
    return (float(np.mean(sps)) if sps else float("nan"), float(np.mean(sss)) if sss else float("nan"), n_const)


def comparable(maps: np.ndarray) -> list[int]:
    """Samples whose map has a rank order to compare (not constant, finite)."""
    return [i for i in range(len(maps)) if spearman_abs(maps[i], maps[i]) is not None]


# ---- the gate of the attribution rules --------------------------------------------------------------------------

class TrustSettings(BaseModel):
    """How an attribution rule checks its explainer on the audited model before it judges the maps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="false: judge the maps without checking the explainer")
    n: int = Field(default=32, ge=2, description="samples the checks run on (a seeded subset of the rule's; 16 "
                   "left clean zoo models near the limits passing on one subset and failing on another)")
    top_layers: int = Field(default=3, ge=1, description="randomisation: the top layers re-initialised")
    max_spearman: float = Field(default=0.5, ge=-1.0, le=1.0,
                                description="randomisation: a map more similar than this did not change")
    min_gain: float = Field(default=0.05, description="faithfulness: mean of the deletion and insertion gains over "
                            "random pixel orders, in units of each image's target score")
    steps: int = Field(default=10, ge=2, le=100)
    random_repeats: int = Field(default=2, ge=1, le=10)
    baseline: Literal["auto", "blur", "mean", "zero", "noise"] = "auto"
    blur_sigma: float = Field(default=0.1, gt=0.0, description="blur baseline: fraction of the shorter side")
    min_baseline_drop: float = Field(default=0.1, ge=0.0, le=1.0, description="a baseline removes information from "
                                     "an image when it lowers the target score by this fraction of its value")
    min_informative: float = Field(default=0.25, ge=0.0, le=1.0, description="faithfulness is measured only when "
                                   "the baseline lowers the target probability on at least this share of samples")


@dataclass(frozen=True)
class Trust:
    explainer: str
    trusted: bool
    reason: str  # why not (or what was measured), one clause for a message
    details: dict[str, Any] = field(default_factory=dict)


def assess(probe: ModelProbe, name: str, ids: Sequence[str], targets: np.ndarray, s: TrustSettings,
           rng: np.random.Generator) -> Trust:
    """Whether ``name``'s maps explain the audited model on (a seeded subset of) these samples: they change when the
    top layers are randomised, and deleting their top pixels lowers the target faster than random orders."""
    title = explainer_title(probe, name)
    try:
        return _assess(probe, name, title, ids, targets, s, rng)
    except ExplainerError as e:
        return Trust(name, False, f"{title} cannot run on this model ({e})", {"runs": False})


def _assess(probe: ModelProbe, name: str, title: str, ids: Sequence[str], targets: np.ndarray, s: TrustSettings,
            rng: np.random.Generator) -> Trust:
    probe.explainer(name).check(probe.model)
    if not s.enabled:
        return Trust(name, True, f"the checks of {title} on this model are disabled (trust.enabled = false): its "
                     "maps are judged untested", {"checked": False})
    pick = np.sort(rng.choice(len(ids), size=min(s.n, len(ids)), replace=False))
    sub, t = [ids[i] for i in pick], np.asarray(targets)[pick]
    if len(sub) < 2:
        return Trust(name, False, f"fewer than 2 samples to check {title} on", {"n": len(sub)})
    x = probe.images(sub)
    trained = probe.attributions(name, sub, t).maps
    rows = comparable(trained)
    groups = list(reversed(layer_groups(probe)))
    top = [n for g in groups[: min(s.top_layers, len(groups))] for n in g]
    details: dict[str, Any] = {"n": len(sub), "randomised_layers": top}
    if not rows:
        return Trust(name, False, f"every {title} map is constant", details)
    rand = probe.explain_tensor(name, x, t, model=probe.randomized_copy(top, int(rng.integers(2**31 - 1))))
    sp, _, _ = similarity(trained, rand, rows)
    details["spearman_after_randomisation"] = rnd(sp)
    if not sp <= s.max_spearman:
        return Trust(name, False, f"{title} maps barely change when the top {len(groups[:s.top_layers])} layers are "
                     f"randomised (Spearman {sp:.2f} > {s.max_spearman:.2f}): they do not explain this model",
                     details)
    choice = choose_baseline(probe, x, t, s.baseline, s.blur_sigma, s.min_baseline_drop,
                             int(rng.integers(2**31 - 1)))
    inf = choice.informative
    details.update(baseline=choice.name, baseline_candidates=choice.candidates)
    if inf.sum() < max(2, math.ceil(s.min_informative * len(sub))):
        return Trust(name, False, f"the faithfulness of {title} cannot be measured: no baseline lowers the target "
                     f"score by {pct_of(s.min_baseline_drop)} on {pct_of(s.min_informative)} of the samples "
                     f"({choice.words()})", details)
    xs, bs, ts = x[inf], choice.base[inf], t[inf]
    ro = random_orders(probe, xs, bs, ts, s.steps, s.random_repeats, rng)
    d, i = perturbation_curves(probe, xs, bs, _ranks(trained[inf], rng), ts, s.steps)
    # in units of each image's own target score (the curves start there), so a small soft area counts as a
    # confident class probability does
    scale = np.maximum(d[:, 0], 1e-12)
    gain = float((((ro.deletion - auc(d)) / scale).mean() + ((auc(i) - ro.insertion) / scale).mean()) / 2)
    details["faithfulness_gain"] = rnd(gain)
    if not gain >= s.min_gain:
        return Trust(name, False, f"{title} is not faithful on this model: deleting its top pixels first does not "
                     f"beat random orders (mean gain {gain:+.3f} < {s.min_gain:.3f}, '{choice.name}' baseline)",
                     details)
    return Trust(name, True, f"{title} passes the checks (randomisation Spearman {sp:.2f}, faithfulness gain "
                 f"{gain:+.3f}, '{choice.name}' baseline)", details)


def pct_of(x: float) -> str:
    return f"{100.0 * x:.0f} %"


AUTO_EXPLAINERS = ("transformer_lrp", "gradcam")  # "auto": transformer LRP where the model has attention, else Grad-CAM


def candidates(setting: str | Sequence[str]) -> list[str]:
    """The explainers an attribution rule may use, in order: one name, a list, or ``auto``."""
    if isinstance(setting, str):
        return list(AUTO_EXPLAINERS) if setting == "auto" else [setting]
    return list(setting)


def pick_explainer(probe: ModelProbe, setting: str | Sequence[str], ids: Sequence[str], targets: np.ndarray,
                   s: TrustSettings, rng: np.random.Generator) -> tuple[str | None, list[Trust]]:
    """The first candidate explainer that runs on the model and passes ``assess`` (None when none does), and the
    assessment of every candidate tried."""
    tried: list[Trust] = []
    for name in candidates(setting):
        t = assess(probe, name, ids, targets, s, rng)
        tried.append(t)
        if t.trusted:
            return name, tried
    return None, tried


def untrusted_words(tried: Sequence[Trust]) -> str:
    """Why no candidate explainer was used, for a not_applicable message."""
    return "; ".join(t.reason for t in tried)


def not_used_words(tried: Sequence[Trust]) -> str:
    """The candidates tried before the one used that ran but failed a check (one that cannot run on this kind of
    model, such as transformer LRP on a CNN, is left out), as a sentence; empty when there is none."""
    failed = [t for t in tried[:-1] if t.details.get("runs", True)]
    return f" Not used: {untrusted_words(failed)}." if failed else ""


def trust_details(tried: Sequence[Trust]) -> dict[str, Any]:
    return {t.explainer: {"trusted": t.trusted, "reason": t.reason, **t.details} for t in tried}
