"""OOD scores against pytorch-ood 0.4 on the same features; AUROC and its DeLong interval against scikit-learn,
a hand computation and a bootstrap; FPR at 95 % TPR against pytorch-ood in both conventions; the built-in
far-OOD sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_ood import detector as pod
from pytorch_ood.metrics import functional as pom
from sklearn.metrics import roc_auc_score

from audit.errors import ConfigError
from audit.robustness import detector, far_ood, model_outputs, separation
from audit.robustness.ood import Mahalanobis
from audit.robustness.stats import auroc_delong, fpr_at_tpr, fpr_interval


@pytest.fixture(scope="module")
def outputs(digit_model, digits):
    train = model_outputs(digit_model, digit_model.fc, digits.x_train)
    test = model_outputs(digit_model, digit_model.fc, digits.x_test[:300])
    return train, test


def test_model_outputs_are_the_logits_and_penultimate_features(digit_model, digits, outputs) -> None:
    _, test = outputs
    with torch.no_grad():
        assert torch.allclose(test.features, digit_model.features(digits.x_test[:300]), atol=1e-6)
        assert torch.allclose(test.logits, digit_model(digits.x_test[:300]), atol=1e-6)


def test_scores_match_pytorch_ood(digits, outputs) -> None:
    train, test = outputs
    logits, z = test.logits, test.features
    assert torch.allclose(detector("msp").score(test).float(), pod.MaxSoftmax.score(logits), atol=1e-6)
    assert torch.allclose(detector("energy").score(test).float(), pod.EnergyBased.score(logits), atol=1e-5)
    assert torch.allclose(detector("max_logit").score(test).float(), pod.MaxLogit.score(logits))
    knn = pod.KNN(None, k=50).fit_features(train.features, digits.y_train).predict_features(z)
    ours = detector("knn").fit(train, digits.y_train).score(test)
    assert torch.allclose(ours, knn.double(), atol=1e-5)
    # pytorch-ood's shared covariance is the within-class scatter S (not S / N) plus 1e-6 I: with our ridge set
    # to the same absolute 1e-6 / N, our scores are exactly N times its scores
    n = len(train.features)
    ref = pod.Mahalanobis(None).fit_features(train.features, digits.y_train).predict_features(z).double()
    scatter_var = float(Mahalanobis(ridge=0.0).fit(train, digits.y_train).precision.pinverse().diagonal().mean())
    ours = Mahalanobis(ridge=1e-6 / n / scatter_var).fit(train, digits.y_train).score(test) / n
    assert torch.allclose(ours, ref, rtol=1e-4)
    assert float(ref.std() / ref.mean()) > 0.1  # not a constant


def test_unfitted_detectors_and_impossible_k_are_refused(outputs, digits) -> None:
    train, test = outputs
    with pytest.raises(ConfigError, match="fitted"):
        detector("mahalanobis").score(test)
    with pytest.raises(ConfigError, match="k = 50"):
        detector("knn").fit(type(train)(train.logits[:10], train.features[:10]), digits.y_train[:10])


def _delong_by_hand(id_s: list[float], ood_s: list[float]) -> tuple[float, float]:
    """DeLong et al. (1988) from its definition: psi over all pairs, structural components, their variances."""
    m, n = len(ood_s), len(id_s)
    psi = [[1.0 if o > i else 0.5 if o == i else 0.0 for i in id_s] for o in ood_s]
    v10 = [sum(row) / n for row in psi]
    v01 = [sum(psi[a][b] for a in range(m)) / m for b in range(n)]
    auc = sum(v10) / m
    s10 = sum((v - auc) ** 2 for v in v10) / (m - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (n - 1)
    return auc, (s10 / m + s01 / n) ** 0.5


def test_auroc_and_delong_interval() -> None:
    id_s, ood_s = [0.1, 0.4, 0.35, 0.8, 0.2], [0.8, 0.4, 0.9, 0.7, 0.95, 0.3]
    auc, (lo, hi), se = auroc_delong(np.array(id_s), np.array(ood_s))
    hand_auc, hand_se = _delong_by_hand(id_s, ood_s)
    assert auc == pytest.approx(hand_auc, abs=1e-12) and se == pytest.approx(hand_se, abs=1e-12)
    assert auc == pytest.approx(roc_auc_score([0] * 5 + [1] * 6, id_s + ood_s), abs=1e-12)
    assert lo == pytest.approx(max(0, auc - 1.959964 * se), abs=1e-5) and hi <= 1.0

    rng = np.random.default_rng(0)
    i, o = rng.normal(0, 1, 150), rng.normal(0.8, 1, 120)
    _, _, se = auroc_delong(i, o)
    boot = [roc_auc_score(np.r_[np.zeros(150), np.ones(120)],
                          np.r_[rng.choice(i, 150), rng.choice(o, 120)]) for _ in range(1000)]
    assert abs(np.std(boot) - se) / se < 0.15  # DeLong's SE is the bootstrap's, asymptotically


def test_fpr_at_95_tpr_in_both_conventions() -> None:
    id_s = np.arange(1.0, 21.0)  # 95 % of 20 ID samples accepted at t = 19
    ood_s = np.array([0.5, 18.5, 19.0, 19.5, 25.0, 30.0, 40.0, 50.0])
    assert fpr_at_tpr(id_s, ood_s) == pytest.approx(3 / 8)  # 0.5, 18.5 and 19.0 accepted
    rng = np.random.default_rng(1)
    i, o = rng.normal(0, 1, 300), rng.normal(1.5, 1, 200)
    scores = torch.from_numpy(np.r_[i, o])
    ood_label = torch.from_numpy(np.r_[np.zeros(300), -np.ones(200)]).long()
    id_label = torch.from_numpy(np.r_[-np.ones(300), np.zeros(200)]).long()
    assert fpr_at_tpr(i, o, positive="out") == pytest.approx(float(pom.fpr_at_tpr(scores, ood_label)), abs=1e-12)
    assert fpr_at_tpr(i, o, positive="in") == pytest.approx(float(pom.fpr_at_tpr(-scores, id_label)), abs=1e-12)
    lo, hi = fpr_interval(i, o, seed=3)
    lo_small, hi_small = fpr_interval(i[:60], o[:40], seed=3)
    assert lo <= fpr_at_tpr(i, o) <= hi and hi - lo < hi_small - lo_small


def test_far_ood_sets(digit_model, outputs) -> None:
    for name in ("uniform_noise", "gaussian_noise", "blank", "photos"):
        for channels in (1, 3):
            x = far_ood(name, 6, channels, (24, 20), seed=4)
            assert x.shape == (6, channels, 24, 20) and float(x.min()) >= 0 and float(x.max()) <= 1
            assert torch.equal(x, far_ood(name, 6, channels, (24, 20), seed=4))
        assert not torch.equal(x, far_ood(name, 6, 3, (24, 20), seed=5))
    assert (far_ood("blank", 3, 3, (8, 8)).flatten(2).std(2) == 0).all()
    with pytest.raises(ConfigError, match="unknown far-OOD"):
        far_ood("stars", 2, 3, (8, 8))
    _, test = outputs
    noise = model_outputs(digit_model, digit_model.fc, far_ood("uniform_noise", 200, 3, (32, 32), seed=1))
    energy = detector("energy")
    sep = separation(energy.score(test).numpy(), energy.score(noise).numpy())
    assert sep.auroc > 0.9 and sep.auroc_interval[0] <= sep.auroc <= sep.auroc_interval[1]
