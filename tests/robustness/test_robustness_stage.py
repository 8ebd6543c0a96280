"""The robustness stage end to end on the tiny three-class set (tests/conftest.py): every number it reports is
recomputed here independently (the model run directly on the PNG files, scikit-learn's metrics), the random
corruptions and attack starts are reproduced from their documented per-batch seeds, the rules read what the stage
measured, a planted gradient-masking fault is reported as not measurable (an error, never a pass) while its clean
twin passes, and a less robust candidate fails the relative-mCE ceiling against a baseline report."""

from __future__ import annotations

import copy
import csv
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import recall_score, roc_auc_score

from audit.compare.stage import Baseline
from audit.config import load_config
from audit.errors import ConfigError
from audit.inputs import prepare_inputs
from audit.report.output import write_outputs
from audit.result import AuditResult
from audit.robustness import Normalised, PGDConfig, far_ood, pgd
from audit.robustness.corruptions import CORRUPTIONS
from audit.robustness.images import subset_rows
from audit.runner import run_audit

SEED = 0
CORRUPTIONS_TOML = """
[robustness.corruptions]
names = ["contrast", "gaussian_noise"]
severities = [2, 5]
subset = 0
examples = 1
"""
ADVERSARIAL_TOML = """
[robustness.adversarial]
eps = [0.02, 0.05]
steps = 5
subset = 24
check_subset = 16
examples = 1
"""
OOD_TOML = """
[robustness.ood]
far_ood = ["uniform_noise", "blank"]
n_ood = 30
options = { knn = { k = 5 } }
"""
PACK = """[pack]
name = "robustness-test"
[[rule]]
id = "noise-floor"
kind = "corruption_metric_min"
corruptions = ["gaussian_noise"]
threshold = 0.99
[[rule]]
id = "mild-mean"
kind = "corruption_metric_min"
severities = [2]
aggregate = "mean"
relative = true
threshold = 0.5
[[rule]]
id = "robust"
kind = "robust_accuracy_min"
eps = 0.02
threshold = 0.0
[[rule]]
id = "ood"
kind = "ood_auroc_min"
detector = "msp"
threshold = 0.5
[[rule]]
id = "relative-mce"
kind = "relative_ce_max"
max = 1.1
severity = "warning"
"""
QUANTISED = '''
import torch
from audit.demo.model import DemoCNN


class Quantised(DemoCNN):
    """The demo CNN behind a 4-level input quantiser: its loss gradient is zero almost everywhere (masking)."""

    def forward(self, x):
        return super().forward(torch.round(x * 4) / 4)


def build(num_classes=3, width=4):
    return Quantised(num_classes=num_classes, width=width)
'''


@dataclass(frozen=True)
class Run:
    root: Path
    result: AuditResult
    results: dict  # results.json
    images: torch.Tensor  # the held-out PNGs in [0, 1], listing order
    labels: np.ndarray


def _read_set(root: Path) -> tuple[torch.Tensor, np.ndarray]:
    classes = ("left", "middle", "right")
    with (root / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    x = np.stack([np.asarray(Image.open(root / r["path"]), dtype=np.float32) / 255 for r in rows])
    return torch.from_numpy(x)[:, None], np.array([classes.index(r["label"]) for r in rows])


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_setup, module_one_thread, request) -> Run:
    root = tmp_path_factory.mktemp("robustness") / "tiny"
    model = request.getfixturevalue("tiny_model")  # trained here (on one thread) unless another test did already
    s = make_setup(root, model, pack="pack.toml", extra=CORRUPTIONS_TOML + ADVERSARIAL_TOML + OOD_TOML)
    (root / "pack.toml").write_text(PACK)
    result = run_audit(load_config(s.config, ["cache.enabled=false"]))
    write_outputs(result, root / "report", ["json", "html", "model_card", "annex_iv"])
    x, y = _read_set(root)
    return Run(root, result, json.loads((root / "report" / "results.json").read_text()), x, y)


def _accuracy_and_recall(model: torch.nn.Module, x: torch.Tensor, y: np.ndarray) -> tuple[float, np.ndarray]:
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    return float((pred == y).mean()), recall_score(y, pred, labels=[0, 1, 2], average=None, zero_division=0)


def test_corruption_cells_match_the_model_run_directly_on_the_files(run, tiny_model):
    c = run.result.robustness.corruptions
    assert c.metric == "accuracy" and c.n == 45 and c.names == ("contrast", "gaussian_noise")
    for s in (2, 5):
        acc, recall = _accuracy_and_recall(tiny_model, CORRUPTIONS["contrast"](run.images, s), run.labels)
        cell = c.cell("contrast", s)
        assert cell.overall.value == pytest.approx(acc, abs=1e-12)
        assert [v.value for _, v in cell.groups] == pytest.approx(list(recall), abs=1e-12)
        # gaussian noise is drawn per batch of data.batch_size = 16 rows, seeded by (seed, name, severity, first row)
        noisy = torch.cat([CORRUPTIONS["gaussian_noise"](run.images[b:b + 16], s, torch.Generator().manual_seed(
            zlib.crc32(f"{SEED}:gaussian_noise:{s}:{b}".encode()))) for b in range(0, 45, 16)])
        acc, recall = _accuracy_and_recall(tiny_model, noisy, run.labels)
        cell = c.cell("gaussian_noise", s)
        assert cell.overall.value == pytest.approx(acc, abs=1e-12)
        assert [v.value for _, v in cell.groups] == pytest.approx(list(recall), abs=1e-12)
    assert c.cell("contrast", 5).overall.value < c.clean.value  # the corruption does something
    assert len(c.examples) == 2 and len(c.examples[0].images) == 3  # 1 sample x 2 corruptions, clean + 2 severities


def test_robust_accuracy_matches_pgd_on_the_same_batches(run, tiny_model):
    a = run.result.robustness.adversarial
    assert a.status == "measured" and a.masking is not None and a.masking.measurable
    rows = subset_rows(45, 24, SEED, "adversarial")
    x, y = run.images[rows], torch.from_numpy(run.labels[rows])
    net = Normalised(tiny_model, (0.0,), (1.0,))
    correct = net(x).argmax(1) == y
    broken = {eps: [] for eps in (0.02, 0.05)}
    for b in range(0, len(rows), 16):  # one generator per batch, the budgets attacked in turn
        g = torch.Generator().manual_seed(zlib.crc32(f"{SEED}:attack:{b}".encode()))
        for eps in (0.02, 0.05):
            out = pgd(net, x[b:b + 16], y[b:b + 16], PGDConfig(eps, "linf", 5), g, clean_correct=correct[b:b + 16])
            broken[eps].append(out.broken)
    for eps in (0.02, 0.05):
        r = a.at(eps)
        robust = int((correct & ~torch.cat(broken[eps])).sum())
        assert (r.n, r.clean_correct, r.robust_correct) == (24, int(correct.sum()), robust)
        assert r.accuracy == pytest.approx(robust / 24)
    assert a.at(0.05).accuracy <= a.at(0.02).accuracy
    # the attack wraps the audited model (Normalised) and must hand every layer back in eval mode: a model left in
    # training mode updates its batch-norm statistics on every later pass (found by this test)
    assert not any(m.training for m in run.result.model.module.modules())


def test_ood_auroc_is_sklearns_on_the_scores_of_the_same_images(run, tiny_model):
    o = run.result.robustness.ood
    assert o.status == "measured" and o.skipped == {}
    rows = subset_rows(45, 500, SEED, "ood")
    order = np.random.default_rng(SEED).permutation(len(rows))
    test = np.sort(rows[order[round(0.5 * len(rows)):]])  # the half not used to fit mahalanobis / knn
    with torch.no_grad():
        msp_in = -torch.softmax(tiny_model(run.images[test]).double(), 1).amax(1).numpy()
        assert o.scores["msp"]["in"] == pytest.approx(msp_in, abs=1e-5)  # the engine's convolutions round otherwise
        for name in ("uniform_noise", "blank"):
            msp_out = -torch.softmax(tiny_model(far_ood(name, 30, 1, (32, 32), SEED)).double(), 1).amax(1).numpy()
            assert o.scores["msp"][name] == pytest.approx(msp_out, abs=1e-5)
            want = roc_auc_score(np.r_[np.zeros(len(test)), np.ones(30)], np.r_[o.scores["msp"]["in"],
                                                                                o.scores["msp"][name]])
            assert o.result("msp", name).separation.auroc == pytest.approx(want, abs=1e-12)
    assert {r.detector for r in o.results} == {"msp", "energy", "max_logit", "mahalanobis", "knn"}


def test_rules_read_the_stage_and_results_json_carries_it(run):
    found = {f.rule: f for f in run.result.findings}
    c = run.result.robustness.corruptions
    worst_noise = min(c.cell("gaussian_noise", s).overall.value for s in (2, 5))
    assert found["noise-floor"].value == pytest.approx(worst_noise)
    assert found["noise-floor"].status == ("fail" if worst_noise < 0.99 else "pass")
    mild = np.mean([c.cell(n, 2).overall.value / c.clean.value for n in c.names])
    assert found["mild-mean"].value == pytest.approx(mild) and found["mild-mean"].status == "pass"
    assert found["robust"].status == "pass"
    worst_msp = min(run.result.robustness.ood.result("msp", s).separation.auroc for s in ("uniform_noise", "blank"))
    assert found["ood"].value == pytest.approx(worst_msp)
    assert found["ood"].status == ("fail" if worst_msp < 0.5 else "pass")
    assert found["relative-mce"].status == "error" and "--baseline" in found["relative-mce"].message
    doc = run.results
    schema = json.loads((Path(__file__).parents[2] / "audit" / "schema" / "results.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["robustness"]["corruptions"]["cells"][0]["value"] == pytest.approx(c.cells[0].overall.value, rel=1e-5)
    assert doc["robustness"]["adversarial"]["masking_checks"]["status"] == "measurable"
    html = (run.root / "report" / "report.html").read_text()
    assert 'id="robustness"' in html and html.count("data:image/svg+xml") + html.count("data:image/png") > 10


def test_the_text_exports_state_what_was_measured(run):
    """summary.md, Annex IV point 2(g), the Model Card Toolkit metrics and the model card's "cannot attest" clause carry
    the stage's numbers (read back from the written files, rounded as printed)."""
    r, c = run.result.robustness, run.result.robustness.corruptions
    folder = run.root / "report"
    summary = (folder / "summary.md").read_text().replace("\\", "")  # markdown escapes (gaussian\\_noise) left out
    assert "**Robustness:**" in summary
    assert f"clean {c.clean.value:.3f}" in summary and "contrast, gaussian_noise; severities 2, 5" in summary
    robust = r.adversarial.at(0.05)
    assert f"eps 0.05 (12.8/255): robust accuracy {robust.accuracy:.3f}" in summary
    annex = (folder / "annex_iv.md").read_text().replace("\\", "")
    assert "Metrics used to measure robustness (point 2(g)): Common corruptions (contrast, gaussian_noise" in annex
    card = json.loads((folder / "model_card.json").read_text())
    types = {m["type"]: m for m in card["quantitative_analysis"]["performance_metrics"]}
    mean_contrast = np.mean([c.cell("contrast", s).overall.value for s in (2, 5)])
    assert float(types["accuracy under contrast (mean of severities 2, 5)"]["value"]) == pytest.approx(mean_contrast,
                                                                                                       abs=5e-5)
    msp_blank = r.ood.result("msp", "blank").separation.auroc
    assert any(k == "OOD AUROC (msp)" and m["slice"].endswith("vs blank (n=30)") and
               float(m["value"]) == pytest.approx(msp_blank, abs=5e-5) for k, m in types.items())
    card_md = (folder / "model_card.md").read_text().replace("\\", "")
    assert "robustness beyond the perturbations the rules applied and the corruptions measured (contrast, " \
           "gaussian_noise at severities 2–5), PGD linf attacks up to eps 0.05" in card_md
    assert "and the corruptions measured (contrast, gaussian_noise at severities 2–5)" in \
        json.dumps(card, ensure_ascii=False)


def test_a_less_robust_candidate_fails_the_relative_mce_ceiling(run, tmp_path):
    same = run_audit(load_config(run.root / "audit.toml", ["cache.enabled=false"]), baseline=Baseline(run.results))
    v = same.robustness.corruptions.versus_baseline
    assert v is not None and all(r == pytest.approx(1.0) for r in v.ce.values())  # the same model: ratio 1
    assert next(f for f in same.findings if f.rule == "relative-mce").status == "pass"
    better = copy.deepcopy(run.results)  # a baseline that errs half as much above its clean error
    clean = better["robustness"]["corruptions"]["clean"]["value"]
    for cell in better["robustness"]["corruptions"]["cells"]:
        cell["value"] = clean - (clean - cell["value"]) / 2
    worse = run_audit(load_config(run.root / "audit.toml", ["cache.enabled=false"]), baseline=Baseline(better))
    rel = worse.robustness.corruptions.versus_baseline.relative_mce
    f = next(f for f in worse.findings if f.rule == "relative-mce")
    assert rel == pytest.approx(2.0) and f.status == "warn" and f.value == pytest.approx(2.0)


def test_masked_gradients_are_not_measurable_and_block_the_verdict(run, tiny_model, tmp_path, make_setup):
    root = tmp_path / "quantised"
    s = make_setup(root, tiny_model, pack="pack.toml", extra=ADVERSARIAL_TOML)
    (root / "qmodel.py").write_text(QUANTISED)
    (root / "pack.toml").write_text('[pack]\nname = "q"\n[[rule]]\nid = "robust"\nkind = "robust_accuracy_min"\n'
                                    "threshold = 0.0\n")
    s.config.write_text(s.config.read_text().replace("audit.demo.model:build", "qmodel:build"))
    result = run_audit(load_config(s.config, ["cache.enabled=false"]))
    a = result.robustness.adversarial
    assert a.status == "not_measurable" and all(r.accuracy is None for r in a.results)
    failed = {c.name for c in a.masking.checks if not c.passed}
    assert "nonzero_gradients" in failed
    f = next(f for f in result.findings if f.rule == "robust")
    assert f.status == "error" and "not measurable" in f.message and result.verdict == "fail"
    # the clean twin (the same weights without the quantiser) passes the same rule
    assert next(f for f in run.result.findings if f.rule == "robust").status == "pass"


def test_names_are_checked_before_the_model_runs(run):
    for sets, match in ((['robustness.corruptions.names=["fog_of_war"]'],
                         r"robustness.corruptions.names: unknown corruption 'fog_of_war'"),
                        (['robustness.ood.detectors=["msp", "knn", "oracle"]'],
                         r"robustness.ood.detectors: unknown OOD detector 'oracle'"),
                        (['robustness.ood.far_ood=["void"]'], r"robustness.ood.far_ood: unknown far-OOD set 'void'"),
                        (['robustness.ood.options={ knn = { kk = 1 } }'], r"robustness.ood.options.knn: ")):
        with pytest.raises(ConfigError, match=match):
            prepare_inputs(load_config(run.root / "audit.toml", sets))
    with pytest.raises(ConfigError, match=r"robustness.corruptions.severities"):
        load_config(run.root / "audit.toml", ["robustness.corruptions.severities=[0, 6]"])
    with pytest.raises(ConfigError, match=r"robustness.adversarial.eps"):
        load_config(run.root / "audit.toml", ["robustness.adversarial.eps=[-0.1]"])
