"""Out-of-fold evaluation: which rows each member is judged on (folds by a manifest column or by ids, refused when
they overlap or name what is not there), and the pooled out-of-fold figures of a k-fold family against scikit-learn
on predictions computed here from the members' weights."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

from audit.config import FamilyMemberConfig, load_config
from audit.errors import ConfigError
from audit.family.rows import resolve_folds
from audit.products import Predictions
from audit.report.output import write_outputs
from audit.runner import run_audit

PACK = '[pack]\nname = "folds"\n[[rule]]\nid = "accuracy-floor"\nkind = "metric_min"\nmetric = "accuracy"\nthreshold = 0.5\n'
CUE = (1, 3)


def preds(n: int = 8) -> Predictions:
    return Predictions(ids=np.array([f"s{i}" for i in range(n)]), labels=np.arange(n) % 2,
                       probs=np.full((n, 2), 0.5), metadata=pd.DataFrame({"fold": [i % 3 for i in range(n)]}))


def member(name: str, oof=None) -> tuple[str, FamilyMemberConfig]:
    return name, FamilyMemberConfig(name=name, weights="w.safetensors", out_of_fold=oof)


def test_folds_by_column_and_by_ids():
    p = preds()
    f = resolve_folds([("released", None), member("a", {"column": "fold", "values": [0]}),
                       member("b", ["s1", "s4"])], p, list(p.ids))
    assert f.folds["a"].tolist() == [0, 3, 6] and f.folds["b"].tolist() == [1, 4]
    assert f.folds["released"] is None
    assert f.shared.tolist() == [2, 5, 7]  # in no member's fold: no member was trained on them
    assert f.judged("a").tolist() == [0, 2, 3, 5, 6, 7] and f.judged("released").tolist() == list(range(8))
    assert f.common("a", "b").tolist() == [2, 5, 7]
    assert f.untrained.tolist() == [2, 5, 7]


def test_listed_but_unscored_ids_are_noted_unknown_ones_refused():
    p = preds()
    f = resolve_folds([member("a", ["s1", "gone"])], p, [*p.ids, "gone"])
    assert f.folds["a"].tolist() == [1] and "1 out-of-fold sample(s) were not scored" in f.notes[0]
    with pytest.raises(ConfigError, match=r"family member 'a': out_of_fold: 1 id\(s\) are not held-out samples, e.g. "
                                          r"'nope'"):
        resolve_folds([member("a", ["s1", "nope"])], p, list(p.ids))


def test_overlapping_folds_and_unknown_columns_are_refused():
    p = preds()
    with pytest.raises(ConfigError, match=r"family members 'a' and 'b': out-of-fold rows overlap \(1 sample"):
        resolve_folds([member("a", ["s1", "s2"]), member("b", ["s2"])], p, list(p.ids))
    with pytest.raises(ConfigError, match=r"'a': out_of_fold: the manifest has no column 'split' \(metadata columns: "
                                          r"fold\)"):
        resolve_folds([member("a", {"column": "split", "values": [1]})], p, list(p.ids))
    with pytest.raises(ConfigError, match=r"no scored sample has fold in \['9'\]"):
        resolve_folds([member("a", {"column": "fold", "values": [9]})], p, list(p.ids))


def kfold_members() -> str:
    out = ""
    for k in range(4):
        kind = "cue" if k in CUE else "seed"
        out += (f'\n[[family]]\nname = "fold-{k}"\nweights = "../members/{kind}-{k}.safetensors"\n'
                f'out_of_fold = {{ column = "fold", values = [{k}] }}\n')
    return out


def by_hand(root, kind: str, seed: int, rows: np.ndarray) -> np.ndarray:
    """The member's answers on ``rows`` of the manifest: its kernel times the image (mean 0, std 1) plus its bias."""
    w = load_file(str(root / "members" / f"{kind}-{seed}.safetensors"))
    x = np.stack([np.asarray(Image.open(root / "img" / f"{i:03d}.png"), dtype=np.float32) / 255 for i in rows])
    logits = torch.einsum("nhw,chw->nc", torch.from_numpy(x), w["read.weight"][:, 0]) + w["read.bias"]
    return logits.argmax(1).numpy()


@pytest.fixture(scope="module")
def kfold(family_config):
    return run_audit(load_config(family_config("kfold", PACK, kfold_members())))


def test_pooled_out_of_fold_equals_sklearn(kfold, family_root):
    fam = kfold.family
    manifest = pd.read_csv(family_root / "manifest.csv")
    truth = (manifest["label"] == "right").to_numpy().astype(int)
    pooled_true, pooled_pred, per_fold = [], [], {}
    for k in range(4):
        rows = np.flatnonzero(manifest["fold"].to_numpy() == k)
        answers = by_hand(family_root, "cue" if k in CUE else "seed", k, rows)
        pooled_true.append(truth[rows])
        pooled_pred.append(answers)
        per_fold[f"fold-{k}"] = accuracy_score(truth[rows], answers)
    y, p = np.concatenate(pooled_true), np.concatenate(pooled_pred)
    assert fam.pooled is not None and fam.pooled.members == ("fold-0", "fold-1", "fold-2", "fold-3")
    assert fam.pooled.values["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
    assert fam.pooled.confusion.tolist() == confusion_matrix(y, p, labels=[0, 1]).tolist()
    assert accuracy_score(y, p) < 1.0  # the cue folds' marked 'left' images are wrong: the check can fail
    for name, acc in per_fold.items():  # each fold member judged on its own fold (no shared rows)
        m = fam.member(name)
        assert len(m.rows) == 16 and m.values["accuracy"] == pytest.approx(acc, abs=1e-12)
    doc = fam.as_dict()
    assert doc["pooled_out_of_fold"]["confusion"] == confusion_matrix(y, p, labels=[0, 1]).tolist()
    assert doc["shared_rows"] == 0


def test_kfold_pairs_compare_only_rows_neither_trained_on(kfold, family_root):
    fam = kfold.family
    manifest = pd.read_csv(family_root / "manifest.csv")
    fold = manifest["fold"].to_numpy()
    pairs = {(p.a, p.b): p for p in fam.pairs}
    assert pairs[("fold-0", "fold-1")].n == 0  # disjoint folds, no shared rows: nothing to compare
    rows = np.flatnonzero(fold == 1)  # the released model (no fold) and fold-1 share fold-1's rows
    released = by_hand(family_root, "seed", 0, rows)
    other = by_hand(family_root, "cue", 1, rows)
    p = pairs[("released", "fold-1")]
    assert p.n == len(rows) and p.flips.changed == int((released != other).sum())
    assert p.kappa == pytest.approx(cohen_kappa_score(released, other), abs=1e-12)
    assert any("mean ensemble is not judged" in n for n in fam.notes)


def test_report_shows_the_pooled_figures(kfold, tmp_path):
    folder = tmp_path / "report"
    write_outputs(kfold, folder, ["html"])
    pooled = kfold.family.pooled
    html = (folder / "report.html").read_text(encoding="utf-8")
    section = html[html.index("Pooled out-of-fold predictions"):]
    section = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section[:section.index("</table>")]))
    (left_left, left_right), (right_left, right_right) = pooled.confusion.tolist()
    assert f"left {left_left} {left_right} right {right_left} {right_right}" in section
    assert f"accuracy {pooled.values['accuracy']:.3f}" in section
    md = (folder / "summary.md").read_text(encoding="utf-8").replace("\\", "")
    assert f"Pooled out-of-fold predictions of 4 folds (64 rows): accuracy {pooled.values['accuracy']:.3f}." in md
