"""The anomaly detector's own map as an explanation (model.task = "anomaly" with a map output)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ExplainerError
from .base import Explainer, ExplainerParams

#: set on the model by the anomaly task while explaining (``AnomalyTask.explaining``): the last forward's map (B, h, w)
MAP_ATTR = "_audit_anomaly_map"


class AnomalyMapParams(ExplainerParams):
    pass


class AnomalyMap(Explainer):
    """Unsigned: the map above its image's median, upsampled to the input (bilinear)."""

    name = "anomaly_map"
    title = "Anomaly map (the model's own)"
    signed = False
    legend = (
        "The detector's own anomaly map, minus the image's median value (the typical level of its normal pixels) "
        "and clipped at zero: where the model finds the image unusual. It is the model's output, not an "
        "attribution: it shows where the score comes from, not why those pixels look anomalous to it."
    )
    Params = AnomalyMapParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            model(inputs)
        amap = model.__dict__.get(MAP_ATTR)
        if amap is None:
            raise ExplainerError("anomaly_map needs an anomaly detector that returns a map (model.task = 'anomaly' "
                                 "with outputs (batch, height, width)); this model returns none")
        m = amap.detach().float()
        if tuple(m.shape[-2:]) != tuple(inputs.shape[-2:]):
            m = F.interpolate(m[:, None], size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        med = m.flatten(1).median(dim=1).values
        return (m - med[:, None, None]).clamp_min(0).cpu()
