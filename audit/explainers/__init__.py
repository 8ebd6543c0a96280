"""Explainer registry: registry name -> class. A new method is one module plus one line here."""

from __future__ import annotations

from pydantic import ValidationError

from ..errors import ConfigError
from ..plugins import Registry
from .anomaly_map import AnomalyMap
from .attention_rollout import AttentionRollout
from .base import ExplainContext, Explainer, ExplainerParams
from .cam import CAM
from .deconvnet import Deconvnet
from .feature_inversion import FeatureInversion
from .gradcam import GradCAM
from .gradcam_pp import GradCAMPlusPlus
from .gradient_shap import GradientShap
from .guided_backprop import GuidedBackprop
from .guided_gradcam import GuidedGradCAM
from .integrated_gradients import IntegratedGradients
from .kernel_shap import KernelShap
from .layer_activations import LayerActivations
from .lime import Lime
from .lrp import LRP
from .occlusion import Occlusion
from .saliency import Saliency
from .smoothgrad import SmoothGrad
from .transformer_lrp import TransformerLRP

_BUILTIN: tuple[type[Explainer], ...] = (
    GradCAM,
    GradCAMPlusPlus,
    GuidedGradCAM,
    CAM,
    Saliency,
    SmoothGrad,
    GuidedBackprop,
    Deconvnet,
    IntegratedGradients,
    GradientShap,
    Occlusion,
    Lime,
    KernelShap,
    LRP,
    LayerActivations,
    FeatureInversion,
    AttentionRollout,
    TransformerLRP,
    AnomalyMap,
)

ENTRY_POINT_GROUP = "model_audit.explainers"
EXPLAINERS: Registry[type[Explainer]] = Registry(_BUILTIN, ENTRY_POINT_GROUP, "name", "explainers", "explainer")


def registry() -> dict[str, type[Explainer]]:
    """Built-in explainers plus those third parties expose through the entry-point group."""
    return EXPLAINERS.all()


def build_explainer(name: str, options: dict | None = None, context: ExplainContext | None = None) -> Explainer:
    """Instantiate a registered explainer with validated parameters (errors name the method and field)."""
    cls = EXPLAINERS.get(name)
    try:
        params = cls.Params.model_validate(options or {})
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ConfigError(f"explainers.options.{name}: {detail}") from None
    return cls(params, context)


__all__ = ["ExplainContext", "Explainer", "ExplainerParams", "build_explainer", "registry"]
