"""The evaluation stage: synthesis layout, final classifier, calibrated stacking, selection labels."""

import pytest
import torch

from tests.helpers import compose_cfg, shrink
from zsl_lightning.data.split import FeatureSplit
from zsl_lightning.eval.single_label import gzsl_metrics
from zsl_lightning.methods.conditioning import as_condition
from zsl_lightning.methods.generative import GenerativeZSLMethod
from zsl_lightning.pipeline import run


class Oracle(GenerativeZSLMethod):
    """'Generates' a class's true mean (its embedding) plus noise: evaluation must then be near perfect."""

    def __init__(self, **kw):
        super().__init__(noise_dim=4, **kw)

    def generate(self, z, cond):
        return as_condition(cond).vector + 0.01 * z


def _split():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(6, 4, generator=g)
    y_seen = torch.arange(4).repeat_interleave(20)
    y_unseen = torch.tensor([4, 5]).repeat_interleave(20)
    jit = lambda n: 0.01 * torch.randn(n, 4, generator=g)  # noqa: E731
    return FeatureSplit("test", emb[y_seen] + jit(80), y_seen, emb[y_seen] + jit(80), y_seen,
                        emb[y_unseen] + jit(40), y_unseen, emb, torch.arange(4), torch.tensor([4, 5]))


def test_synthesize_groups_rows_by_class():
    m = Oracle(evaluation={"syn_num": 3})
    emb = torch.tensor([[1.0, 0, 0, 0], [0, 5.0, 0, 0]])
    x = m.synthesize(emb, 3)
    assert x.shape == (6, 4)
    assert torch.allclose(x[:3, 0], torch.ones(3), atol=0.1) and torch.allclose(x[3:, 1], 5 * torch.ones(3), atol=0.1)


def test_generative_evaluation_with_an_oracle_generator_is_near_perfect():
    m = Oracle(evaluation={"syn_num": 20, "classifier": {"epochs": 30, "lr": 1e-2, "batch_size": 20}})
    res = m.evaluate(_split())
    assert res["zsl_t1"] > 95 and res["gzsl_H"] > 90


def test_gzsl_seen_source_option_changes_the_classifier_data():
    split = _split()
    real = Oracle(evaluation={"syn_num": 5, "gzsl_seen": "real"}).classifier_training_data(split, "gzsl")
    syn = Oracle(evaluation={"syn_num": 5, "gzsl_seen": "synthetic"}).classifier_training_data(split, "gzsl")
    both = Oracle(evaluation={"syn_num": 5, "gzsl_seen": "both"}).classifier_training_data(split, "gzsl")
    assert len(real[1]) == 80 + 10 and len(syn[1]) == 4 * 5 + 10 and len(both[1]) == 80 + 20 + 10
    zsl = Oracle(evaluation={"syn_num": 5}).classifier_training_data(split, "zsl")
    assert set(zsl[1].tolist()) == {4, 5}


class BiasedScorer:
    """An uninformative scorer that prefers every seen class by 0.5 (the GZSL seen bias)."""

    def __init__(self, classes, seen):
        self.classes, self.seen = classes, seen

    def __call__(self, x):
        return 0.5 * torch.isin(self.classes, self.seen).float().expand(len(x), -1)


def test_calibrated_stacking_moves_predictions_from_seen_to_unseen():
    split = _split()
    classes = torch.arange(6)
    base = gzsl_metrics(BiasedScorer(classes, split.seen_classes), split, gamma=0.0)
    calib = gzsl_metrics(BiasedScorer(classes, split.seen_classes), split, gamma=0.6)
    assert base["gzsl_u"] == 0.0 and base["gzsl_s"] == 25.0  # always the first seen class
    assert calib["gzsl_u"] == 50.0 and calib["gzsl_s"] == 0.0  # now always the first unseen class


def test_test_best_is_labelled_as_test_selection(tmp_path, cache_dir):
    cfg = shrink(compose_cfg(["method=eszsl", "eval.select=test_best"], tmp_path, cache_dir))
    res = run(cfg)
    assert "TEST-SET SELECTION" in res["selection"]["description"]
    assert "validation" not in res


def test_test_best_selects_the_final_classifier_epoch_on_test_for_a_generative_method(tmp_path, cache_dir,
                                                                                      monkeypatch):
    import zsl_lightning.methods.generative as base

    real, scores = base.fit_softmax_classifier, []

    def spy(*args, select_fn=None, **kwargs):  # records what the selector saw after each classifier epoch
        if select_fn is None:  # the frozen seen classifier's pre-training
            return real(*args, **kwargs)
        seen = []
        scores.append(seen)

        def recording(linear):
            seen.append(select_fn(linear))
            return seen[-1]

        return real(*args, select_fn=recording if select_fn else None, **kwargs)

    monkeypatch.setattr(base, "fit_softmax_classifier", spy)
    cfg = shrink(compose_cfg(["method=clswgan", "method.epochs=2", "eval.every=1", "eval.syn_num=10",
                              "eval.classifier.epochs=3", "eval.select=test_best"], tmp_path, cache_dir))
    res = run(cfg)
    assert "TEST-SET SELECTION" in res["selection"]["description"]
    assert "TEST-SET SELECTION" in res["checkpoints"]["best_zsl"]["selected_on"]
    history = res["history"]["test"]
    # every evaluation fits a ZSL then a GZSL classifier, each scored on the test set after each epoch ...
    assert len(history) == 2 and len(scores) == 4 and all(len(s) == 3 for s in scores)
    # ... and reports its best classifier epoch
    for i, h in enumerate(history):
        assert h["zsl_t1"] == pytest.approx(max(scores[2 * i]))
        assert h["gzsl_H"] == pytest.approx(max(scores[2 * i + 1]))
