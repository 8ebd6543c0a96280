"""Stage "explainers": ModelProbe.explain_tensor against the bare captum calls and outside references.

``ModelProbe.explain_tensor`` (and ``.attributions``, which also decodes) for Grad-CAM, saliency, Integrated
Gradients and occlusion vs the bare captum call on the same batch (same options), vs one raw forward + backward
to the input, occlusion vs (positions + 1) raw forwards, and pytorch-grad-cam's batched GradCAM (PyPI grad-cam)
as an outside reference, which Grad-CAM on the channels-last model (the memory format ``audit run`` picks by
default) is compared with too. When pytorch_grad_cam does not import, its rows are recorded as not run, with
the reason.

Targets: explain_tensor >= 0.9 x the bare captum call; Grad-CAM >= 2.5 x pytorch-grad-cam.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import make_row, measure, not_run
from pipeline import DataCache, probe_for
from workloads import TARGETS, ExplainCase, Profile


def occlusion_positions(size: int, window: int, stride: int) -> int:
    win = min(window, size)
    st = min(stride, win)
    per_side = (size - win + st - 1) // st + 1  # captum: ceil((size - window) / stride) + 1
    return per_side * per_side


def stage_explainers(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    rows = []
    for case in p.explain:
        rows += explain_case(case, data.manifest(case.workload, case.batch), p.reps, device)
    return rows


def explain_case(case: ExplainCase, manifest: Path, reps: int, device: torch.device) -> list[dict]:
    from captum.attr import IntegratedGradients, LayerGradCam, Occlusion, Saliency

    from audit.explainers.layers import last_conv

    rows: list[dict] = []
    w, b, methods, opts = case.workload, case.batch, case.methods, case.options
    model, probe = probe_for(w, manifest, b, device, opts, b)
    ids = list(probe.predictions.ids)
    x = probe.images(ids).to(device)
    t_np = probe.targets_for(ids)
    t = torch.as_tensor(t_np, dtype=torch.long, device=device)
    layer_name, layer = last_conv(model)
    size = tuple(x.shape[-2:])
    c = x.shape[1]

    def fwd_bwd() -> None:
        xi = x.detach().clone().requires_grad_(True)
        out = model(xi)
        torch.autograd.grad(out.gather(1, t.view(-1, 1)).sum(), xi)

    def forward_only() -> None:
        with torch.inference_mode():
            model(x)

    def ours(name: str) -> Callable[[], object]:
        return lambda: probe.explain_tensor(name, x, t_np)

    variants: dict[str, Callable[[], object]] = {"fwd_bwd": fwd_bwd, "forward": forward_only}
    pgc = pgc_reason = None
    if "gradcam" in methods:
        def bare_gradcam() -> None:
            cam = LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)
            F.interpolate(cam.detach(), size=size, mode="bilinear", align_corners=False)[:, 0].cpu().numpy()

        def ours_attributions() -> None:
            probe._attr_cache.clear()
            probe.attributions("gradcam", ids)

        variants.update(gradcam=ours("gradcam"), bare_gradcam=bare_gradcam,
                        gradcam_attributions=ours_attributions)
        try:
            from pytorch_grad_cam import GradCAM as PGCGradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

            pgc = PGCGradCAM(model=model, target_layers=[layer])
            pgc_targets = [ClassifierOutputTarget(int(v)) for v in t_np]
            variants["pytorch_grad_cam"] = lambda: pgc(input_tensor=x, targets=pgc_targets)
            # what `audit run` uses by default: the model in channels-last memory format (compute.channels_last)
            model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
            variants["gradcam_cl"] = lambda: probe.explain_tensor("gradcam", x, t_np, model=model_cl)
        except ImportError as e:
            pgc_reason = f"pytorch_grad_cam not importable ({e}); pip install grad-cam"
    if "saliency" in methods:
        def bare_saliency() -> None:
            g = Saliency(model).attribute(x.detach().requires_grad_(True), target=t, abs=True)
            g.detach().amax(dim=1).cpu().numpy()

        variants.update(saliency=ours("saliency"), bare_saliency=bare_saliency)
    ig = {"n_steps": 32, "internal_batch_size": 16, **opts.get("integrated_gradients", {})}
    if "integrated_gradients" in methods:
        assert ig.get("baseline", "zeros") == "zeros"

        def bare_ig() -> None:
            a = IntegratedGradients(model).attribute(
                x.detach().requires_grad_(True), baselines=torch.zeros_like(x), target=t, n_steps=ig["n_steps"],
                internal_batch_size=max(ig["internal_batch_size"], x.shape[0]))
            a.detach().sum(dim=1).cpu().numpy()

        variants.update(integrated_gradients=ours("integrated_gradients"), bare_ig=bare_ig)
    oc = {"window": 16, "stride": 8, "perturbations_per_eval": 16, **opts.get("occlusion", {})}
    win, st = min(oc["window"], size[0]), min(oc["stride"], min(oc["window"], size[0]))
    ppe = oc["perturbations_per_eval"]
    n_pos = occlusion_positions(size[0], oc["window"], oc["stride"])
    if "occlusion" in methods:
        def bare_occlusion() -> None:
            with torch.no_grad():
                a = Occlusion(model).attribute(x, sliding_window_shapes=(c, win, win), strides=(c, st, st),
                                               baselines=0.0, target=t, perturbations_per_eval=ppe)
            a.mean(dim=1).cpu().numpy()

        xr = x.repeat(ppe, 1, 1, 1)

        def n_forwards() -> None:  # captum: one forward of x, then ceil(n_pos / ppe) forwards of ppe copies
            with torch.inference_mode():
                model(x)
                for s in range(0, n_pos, ppe):
                    model(xr[: x.shape[0] * min(ppe, n_pos - s)])

        variants.update(occlusion=ours("occlusion"), bare_occlusion=bare_occlusion, n_forwards=n_forwards)
    fwd_bwd()  # warm-up: first calls (explainer construction, lazy imports, allocator) on one image
    forward_only()
    for name in methods:
        probe.explain_tensor(name, x[:1], t_np[:1])
    if pgc is not None:
        pgc(input_tensor=x[:1], targets=pgc_targets[:1])
    m = measure(variants, reps, device)
    if pgc is not None:
        pgc.__exit__(None, None, None)  # removes its hooks
    model.zero_grad(set_to_none=True)
    label = f"{w.name} B={b}"
    fb = m["fwd_bwd"]
    add = rows.append
    add(make_row("explainers", label, "raw forward + backward to input", b, fb))
    add(make_row("explainers", label, "raw forward (inference_mode)", b, m["forward"]))
    if "gradcam" in methods:
        add(make_row("explainers", label, f"bare captum LayerGradCam ({layer_name})", b, m["bare_gradcam"],
                     reference="raw forward + backward to input", ref=fb))
        add(make_row("explainers", label, "gradcam explain_tensor", b, m["gradcam"],
                     reference="bare captum LayerGradCam", ref=m["bare_gradcam"], target=TARGETS["captum"]))
        add(make_row("explainers", label, "gradcam explain_tensor vs raw forward", b, m["gradcam"],
                     reference="raw forward (inference_mode)", ref=m["forward"]))
        if pgc is not None:
            add(make_row("explainers", label, "pytorch-grad-cam GradCAM (outside ref)", b,
                         m["pytorch_grad_cam"], reference="raw forward (inference_mode)", ref=m["forward"],
                         note="speed vs forward < 1/2.5 would be needed for a 2.5x margin"))
            add(make_row("explainers", label, "gradcam explain_tensor vs pytorch-grad-cam", b, m["gradcam"],
                         reference="pytorch-grad-cam GradCAM", ref=m["pytorch_grad_cam"],
                         target=TARGETS["pytorch_grad_cam"],
                         bound_if_as_fast_as_raw_forward=round(
                             m["pytorch_grad_cam"]["seconds"] / m["forward"]["seconds"], 3)))
            add(make_row("explainers", label, "gradcam explain_tensor, channels-last model vs pytorch-grad-cam", b,
                         m["gradcam_cl"], reference="pytorch-grad-cam GradCAM", ref=m["pytorch_grad_cam"],
                         target=TARGETS["pytorch_grad_cam"], note="the memory format audit run picks by default"))
        else:
            add(not_run("explainers", label, "pytorch-grad-cam GradCAM (outside ref)", str(pgc_reason)))
        add(make_row("explainers", label, "gradcam attributions (decode + explain)", b,
                     m["gradcam_attributions"], reference="bare captum LayerGradCam", ref=m["bare_gradcam"]))
    if "saliency" in methods:
        add(make_row("explainers", label, "bare captum Saliency", b, m["bare_saliency"],
                     reference="raw forward + backward to input", ref=fb))
        add(make_row("explainers", label, "saliency explain_tensor", b, m["saliency"],
                     reference="bare captum Saliency", ref=m["bare_saliency"], target=TARGETS["captum"]))
    if "integrated_gradients" in methods:
        add(make_row("explainers", label, "bare captum IntegratedGradients", b, m["bare_ig"],
                     reference="raw forward + backward to input", ref=fb,
                     note=f"{ig['n_steps']} path points per image"))
        add(make_row("explainers", label, f"integrated_gradients explain_tensor (n_steps={ig['n_steps']})", b,
                     m["integrated_gradients"], reference="bare captum IntegratedGradients", ref=m["bare_ig"],
                     target=TARGETS["captum"]))
    if "occlusion" in methods:
        add(make_row("explainers", label, f"{n_pos + 1} raw forwards (occlusion positions + 1)", b,
                     m["n_forwards"]))
        add(make_row("explainers", label, "bare captum Occlusion", b, m["bare_occlusion"],
                     reference=f"{n_pos + 1} raw forwards", ref=m["n_forwards"]))
        add(make_row("explainers", label, f"occlusion explain_tensor ({n_pos} positions)", b, m["occlusion"],
                     reference="bare captum Occlusion", ref=m["bare_occlusion"], target=TARGETS["captum"]))
        add(make_row("explainers", label, f"occlusion explain_tensor vs {n_pos + 1} forwards", b,
                     m["occlusion"], reference=f"{n_pos + 1} raw forwards", ref=m["n_forwards"]))
    return rows
