"""Each generative multi-label method learns on the embedded benchmark (data=synthetic_ml): it beats the
closed-form ridge baseline (method=ridge_ml: ridge-regressed embedding, labels ranked by cosine) by a clear
margin in GZSL, and ranks the unseen labels far above chance in ZSL.

Runs use eval.select=last (no selection) and the presets conf/preset/mlzsl/synthetic_ml.yaml (+ per-GAN/CLF overrides), 30 epochs.
Seed 0, test split (docs/methods/multilabel.md): random scores give ZSL mAP ~1.8 (1.5-2.4 over draws);
ridge_ml ZSL mAP 23.4, GZSL mAP 44.8 / F1@3 55.3; flf_clswgan / clf_vaegan ZSL mAP 15.6 / 16.4, GZSL mAP
63.7 / 64.1, F1@3 65.0 / 65.7. The GZSL margin alone could come from the real seen features of the GZSL classifier, so the
ZSL bound (which only synthetic unseen features can reach) is part of the test: at least 5x chance.

With the paper's ZSL classifier (synthetic unseen-only label sets) the generators do not beat ridge in
ZSL here: 80% of the ZSL test images hold no unseen label, and a classifier that never saw such an image
cannot score it low. method.zsl_sets=all (seen-only sets as negatives) lets them; the slow test pins that.
Two methods run in the default suite; the others are marked slow.
"""

import pytest
import torch

from tests.helpers import compose_cfg
from zsl_lightning.eval.multilabel_metrics import mean_average_precision
from zsl_lightning.pipeline import build_datamodule, run

FAST = ["flf_clswgan", "clf_vaegan"]
SLOW = ["alf_clswgan", "clf_clswgan", "alf_vaegan", "flf_vaegan"]


@pytest.fixture(scope="module")
def ridge(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("ridge")
    return run(compose_cfg(["method=ridge_ml", "data=synthetic_ml", "eval.select=last"], out, cache_dir))["headline"]


@pytest.fixture(scope="module")
def chance_zsl_map(tmp_path_factory, cache_dir):
    """The ZSL mAP of random scores on the test split (mean over 5 draws), in percent."""
    cfg = compose_cfg(["method=ridge_ml", "data=synthetic_ml"], tmp_path_factory.mktemp("chance"), cache_dir)
    labels = build_datamodule(cfg).split("test").eval_zsl.y.float()
    g = torch.Generator().manual_seed(0)
    return 100 * sum(mean_average_precision(torch.rand(labels.shape, generator=g), labels)[0] for _ in range(5)) / 5


def test_ridge_baseline_is_meaningful(ridge, chance_zsl_map):
    assert ridge["zsl_mAP"] > 5 * chance_zsl_map  # the label vectors carry real information


def _check(method, tmp_path, cache_dir, ridge, chance):
    res = run(compose_cfg([f"method={method}", "data=synthetic_ml", "eval.select=last", "method.epochs=30",
                           "eval.every=30"], tmp_path, cache_dir))["headline"]
    assert res["gzsl_mAP"] >= ridge["gzsl_mAP"] + 5.0, (res, ridge)
    assert res["gzsl_F1@3"] >= ridge["gzsl_F1@3"] + 3.0, (res, ridge)
    assert res["zsl_mAP"] >= 5 * chance, (res, chance)


@pytest.mark.parametrize("method", FAST)
def test_ml_method_beats_ridge(method, tmp_path, cache_dir, ridge, chance_zsl_map):
    _check(method, tmp_path, cache_dir, ridge, chance_zsl_map)


@pytest.mark.slow
@pytest.mark.parametrize("method", SLOW)
def test_ml_method_beats_ridge_slow(method, tmp_path, cache_dir, ridge, chance_zsl_map):
    _check(method, tmp_path, cache_dir, ridge, chance_zsl_map)


@pytest.mark.slow
def test_zsl_with_seen_sets_as_negatives_beats_ridge(tmp_path, cache_dir, ridge):
    """method.zsl_sets=all, 50 epochs: ZSL mAP 34.4 (seed 0; seed 1: 44.7) against ridge's 23.4; the same run
    with the released unseen-only sets reaches 23.3."""
    res = run(compose_cfg(["method=alf_clswgan", "data=synthetic_ml", "eval.select=last", "method.epochs=50",
                           "eval.every=50", "method.zsl_sets=all"], tmp_path, cache_dir))["headline"]
    assert res["zsl_mAP"] >= ridge["zsl_mAP"] + 5.0, (res, ridge)
    assert res["gzsl_mAP"] >= ridge["gzsl_mAP"] + 5.0, (res, ridge)
