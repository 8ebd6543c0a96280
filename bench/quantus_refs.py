"""Stage "quantus": Quantus PointingGame / ROAD as outside references for the ROI and faithfulness rules' own
measurements (ours: ROI share and pointing game over Grad-CAM maps, and the deletion + insertion curves of
``audit.rules.faithfulness``), when quantus imports; otherwise recorded as not run, with the reason. The
algorithms differ: the ratio is a speed reference only, with no target.

Install it with `.venv/bin/pip install --no-deps quantus cachetools`: a plain `pip install quantus` also pulls
opencv-python, whose cv2/ overwrites that of grad-cam's opencv-python-headless (and uninstalling either one
later breaks the other). Its remaining dependencies are already here.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from harness import make_row, measure, not_run
from pipeline import DataCache, probe_for, write_image_set
from workloads import DEMO, Profile

VARIANT = "PointingGame / ROAD"


def stage_quantus(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    try:
        import quantus
    except Exception as e:  # noqa: BLE001 - any import failure means "not run"
        return [not_run("quantus", "-", VARIANT,
                        f"quantus is not importable ({type(e).__name__}: {e}); install with "
                        "`pip install --no-deps quantus cachetools` (a plain install pulls opencv-python, "
                        "which shares cv2/ with grad-cam's opencv-python-headless)")]
    from scipy.ndimage import distance_transform_edt

    from audit.rules import faithfulness as fa  # the rule's own helpers (names may move: looked up softly)

    ranks_fn = getattr(fa, "_ranks", None) or getattr(fa, "pixel_ranks", None)
    curves_fn = getattr(fa, "perturbation_curves", None)
    if ranks_fn is None or curves_fn is None:
        return [not_run("quantus", "-", VARIANT,
                        "audit.rules.faithfulness no longer has _ranks / perturbation_curves")]

    w, n = DEMO, p.quantus_images
    manifest = write_image_set(data.root / "quantus", n, w.size, w.channels, w.num_classes, seed=2, roi=True)
    model, probe = probe_for(w, manifest, n, device, {}, 64)
    ids = list(probe.predictions.ids)
    x = probe.images(ids)
    t = probe.targets_for(ids)
    maps = probe.attributions("gradcam", ids).maps
    rois = np.stack([probe.roi(s) for s in ids])
    steps = 10

    def ours_pointing() -> None:
        pos = np.clip(maps, 0, None)
        for i in range(n):
            _ = pos[i][rois[i]].sum() / max(pos[i].sum(), 1e-12)
            r, c = np.unravel_index(int(np.argmax(pos[i])), pos[i].shape)
            _ = bool(rois[i][r, c]) or float(distance_transform_edt(~rois[i])[r, c]) <= 15.0

    def ours_deletion() -> None:
        ranks = ranks_fn(maps, np.random.default_rng(0))
        from audit.explainers._common import gaussian_blur

        curves_fn(probe, x, gaussian_blur(x, 5.0), ranks, t, steps)

    xb, yb = x.numpy(), t.astype(int)
    ab = maps[:, None].astype(np.float32)
    sb = rois[:, None].astype(np.float32)

    def q_pointing() -> None:
        quantus.PointingGame(disable_warnings=True, display_progressbar=False)(
            model=model, x_batch=xb, y_batch=yb, a_batch=ab, s_batch=sb, device=str(device))

    pct = list(range(100 // steps, 100, 100 // steps))  # 0 % would leave the input unchanged (quantus warns)

    def q_road() -> None:
        quantus.ROAD(percentages=pct, noise=0.01, disable_warnings=True, display_progressbar=False)(
            model=model, x_batch=xb, y_batch=yb, a_batch=ab, device=str(device))

    rows = []
    for name, ours, theirs, ref_name in (
        ("pointing game", ours_pointing, q_pointing, "quantus.PointingGame"),
        (f"deletion+insertion curves ({steps} steps)", ours_deletion, q_road, f"quantus.ROAD ({len(pct)} pct)"),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # quantus' parameter notices
                m = measure({"ours": ours, "theirs": theirs}, max(1, min(p.reps, 2)), device)
        except Exception as e:  # noqa: BLE001
            rows.append(not_run("quantus", f"{w.name} N={n}", ref_name, f"{type(e).__name__}: {str(e)[:200]}"))
            continue
        rows.append(make_row("quantus", f"{w.name} N={n}", ref_name + " (outside ref)", n, m["theirs"]))
        rows.append(make_row("quantus", f"{w.name} N={n}", f"ours: {name}", n, m["ours"], reference=ref_name,
                             ref=m["theirs"], note="different algorithms; speed reference only"))
    return rows

