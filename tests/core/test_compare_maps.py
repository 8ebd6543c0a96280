"""Explanations compared with a baseline: maps kept in maps.npz, similarity on shared picks, ROI share per class."""

import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from audit.cli import app
from audit.compare.explanations import compare_explainer
from audit.compare.reports import compare_results
from audit.errors import DataError
from audit.maps.store import StoredMaps, load_maps, save_maps

runner = CliRunner()


def _stored(maps, labels, targets=None, shares=None, ids=None):
    n = len(maps)
    return StoredMaps(
        explainer="m", ids=tuple(ids or (f"s{i}" for i in range(n))),
        targets=np.asarray(targets if targets is not None else labels), labels=np.asarray(labels),
        maps=np.asarray(maps, dtype=np.float32),
        roi_share=np.asarray(shares if shares is not None else [np.nan] * n, dtype=float), signed=False)


def test_maps_file_round_trip_keeps_every_magnitude(tmp_path):
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 8, 8)).astype(np.float32)
    maps[1] *= 1e7  # beyond float16's range without the per-map scale
    maps[2] *= 1e-7  # below float16's smallest normal number
    s = _stored(maps, [0, 1, 2], shares=[0.5, np.nan, 0.25])
    save_maps(tmp_path / "maps.npz", {"m": s})
    back = load_maps(tmp_path / "maps.npz")["m"]
    assert back.ids == s.ids and np.array_equal(back.targets, s.targets)
    np.testing.assert_allclose(back.maps, maps, rtol=0, atol=1e-3 * np.abs(maps).max(axis=(1, 2))[:, None, None].max())
    for i in range(3):
        scale = np.abs(maps[i]).max()
        assert np.abs(back.maps[i] - maps[i]).max() <= 1e-3 * scale
    np.testing.assert_array_equal(np.isnan(back.roi_share), [False, True, False])


def test_not_a_maps_file_is_named(tmp_path):
    bad = tmp_path / "maps.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="maps.npz"):
        load_maps(bad)


def test_roi_share_change_per_class_by_hand():
    """Class 0 keeps its mass in the ROI, class 1 moves all of it outside: delta 0 and -1."""
    roi = np.zeros((8, 8), bool)
    roi[2:6, 2:6] = True
    inside = np.where(roi, 1.0, 0.0)
    outside = np.where(roi, 0.0, 1.0)
    base = _stored([inside, inside, inside, inside], [0, 0, 1, 1], shares=[1.0, 1.0, 1.0, 1.0])
    cand = _stored([inside, inside, outside, outside], [0, 0, 1, 1], shares=[1.0, 1.0, 0.0, 0.0])
    out = compare_explainer(base, cand, ["a", "b"])
    per_class = {r["class"]: r for r in out["roi_share_per_class"]}
    assert per_class["a"]["delta"] == 0.0 and per_class["b"]["delta"] == -1.0 and per_class["b"]["n"] == 2
    # the two moved maps are the least similar ones and are listed first
    assert {r["id"] for r in out["lowest"][:2]} == {"s2", "s3"}
    assert out["n_compared"] == 4 and out["spearman"]["min"] < 0


def test_only_maps_of_the_same_class_are_compared():
    m = np.random.default_rng(1).random((2, 8, 8))
    base = _stored(m, [0, 1], targets=[0, 1])
    cand = _stored(m, [0, 1], targets=[0, 2])  # s1 is now explained for another class
    out = compare_explainer(base, cand, ["a", "b", "c"])
    assert out["n_compared"] == 1 and out["n_target_differs"] == 1
    assert out["spearman"]["median"] == pytest.approx(1.0) and out["ssim"]["median"] == pytest.approx(1.0)


@pytest.fixture()
def base_report(tiny, tmp_path):
    out = tmp_path / "base"
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return tiny, out


def _save_variant(tiny, model, name):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tiny.root / name))
    pack = tiny.root / "drift.toml"
    pack.write_text('[pack]\nname = "drift"\n[[rule]]\nid = "drift"\nkind = "baseline_explanation_change"\n'
                    'explainer = "gradcam"\nmin_median_spearman = 0.9\nmax_roi_share_drop = 0.2\n')
    return pack


def _drift_rule(out):
    return {r["id"]: r for r in json.loads((out / "results.json").read_text())["rules"]}["drift"]


def test_report_keeps_its_maps(base_report):
    _, out = base_report
    results = json.loads((out / "results.json").read_text())
    assert results["maps_file"] == "maps.npz"
    assert "maps.npz" in json.loads((out / "manifest.json").read_text())["files"]
    kept = load_maps(out / "maps.npz")["gradcam"]
    picked = {p["id"] for c in ("correct", "incorrect", "borderline") for p in results["samples"][c]}
    assert picked <= set(kept.ids)
    assert np.isfinite(kept.roi_share).any()  # the tiny set has ROI boxes


def test_self_compare_of_maps_is_identical(base_report):
    _, out = base_report
    res = runner.invoke(app, ["compare", str(out), str(out), "--json", str(out.parent / "c.json")])
    assert res.exit_code == 0, res.output
    e = json.loads((out.parent / "c.json").read_text())["explanations"]["gradcam"]
    assert e["n_compared"] > 0 and e["spearman"]["min"] == 1.0 and e["ssim"]["min"] == 1.0
    assert all(r["delta"] == 0 for r in e["roi_share_per_class"])


def test_bias_change_keeps_gradcam_maps(base_report, tiny_model, tmp_path):
    """A logit bias does not enter any gradient: Grad-CAM maps for the same class are unchanged, also for the
    picks whose predicted class flipped (the candidate is explained for the baseline's class)."""
    tiny, base = base_report
    worse = copy.deepcopy(tiny_model)
    with torch.no_grad():
        worse.fc.bias[1] -= 8.0
    pack = _save_variant(tiny, worse, "worse.safetensors")
    out = tmp_path / "cand"
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(out), "--baseline", str(base),
                              "--set", 'model.weights="worse.safetensors"', "--rules", str(pack)])
    assert res.exit_code == 0, res.output
    assert _drift_rule(out)["status"] == "pass"
    e = json.loads((out / "results.json").read_text())["comparison"]["explanations"]["gradcam"]
    assert e["n_target_differs"] == 0 and e["n_compared"] > 0
    assert e["spearman"]["min"] > 0.99 and e["ssim"]["min"] > 0.99
    assert "Explanations of the same samples" in (out / "report.html").read_text()


def test_changed_features_lower_map_similarity(base_report, tiny_model, tmp_path):
    tiny, base = base_report
    changed = copy.deepcopy(tiny_model)
    convs = [m for m in changed.modules() if isinstance(m, torch.nn.Conv2d)]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        convs[-1].weight.copy_(torch.randn(convs[-1].weight.shape, generator=g) * convs[-1].weight.std())
    pack = _save_variant(tiny, changed, "changed.safetensors")
    out = tmp_path / "cand"
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(out), "--baseline", str(base),
                              "--set", 'model.weights="changed.safetensors"', "--rules", str(pack)])
    assert res.exit_code == 1, res.output
    drift = _drift_rule(out)
    assert drift["status"] == "fail" and "median Spearman" in drift["message"]
    e = json.loads((out / "results.json").read_text())["comparison"]["explanations"]["gradcam"]
    assert e["n_compared"] > 0 and e["spearman"]["median"] < 0.9
    assert e["lowest"][0]["spearman"] <= e["spearman"]["median"]


def test_same_ids_different_images_are_not_paired(base_report):
    _, out = base_report
    res = json.loads((out / "results.json").read_text())
    other = copy.deepcopy(res)
    other["provenance"]["data"]["images_sha256"] = "0" * 64
    with pytest.raises(DataError, match="image files differ"):
        compare_results(res, other)
    assert not compare_results(res, other, unpaired=True)["paired"]


def test_explanation_rule_without_baseline_maps_is_an_error(base_report, tiny_model, tmp_path):
    tiny, base = base_report
    pack = _save_variant(tiny, tiny_model, "same.safetensors")
    (base / "maps.npz").unlink()
    out = tmp_path / "cand"
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(out), "--baseline", str(base),
                              "--rules", str(pack)])
    assert res.exit_code == 1, res.output
    drift = _drift_rule(out)
    assert drift["status"] == "error" and "maps.npz" in drift["message"]
