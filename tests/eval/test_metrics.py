"""Single-label metrics against hand-computed values."""

import pytest
import torch

from zsl_lightning.eval.metrics import harmonic_mean, per_class_accuracy
from zsl_lightning.eval.selection import best_epochs, task_metrics


def test_per_class_accuracy_is_the_mean_of_class_accuracies():
    # class 3: 3 of 4 right; class 7: 1 of 2 right; class 9 is not averaged
    target = torch.tensor([3, 3, 3, 3, 7, 7, 9])
    pred = torch.tensor([3, 3, 3, 7, 7, 3, 9])
    acc = per_class_accuracy(pred, target, torch.tensor([3, 7]))
    assert acc == pytest.approx((3 / 4 + 1 / 2) / 2)
    # per-image accuracy would be 4/6: the metric must not be that
    assert acc != pytest.approx(4 / 6)


def test_per_class_accuracy_uses_floats():
    target = torch.tensor([1, 1, 1, 2])
    pred = torch.tensor([1, 2, 2, 2])
    assert per_class_accuracy(pred, target, torch.tensor([1, 2])) == pytest.approx((1 / 3 + 1) / 2)


def test_harmonic_mean():
    assert harmonic_mean(0.5, 0.25) == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_selection_picks_best_epoch_per_task_and_earliest_on_ties():
    hist = [
        {"epoch": 5, "zsl_t1": 50.0, "gzsl_H": 30.0, "gzsl_u": 1.0},
        {"epoch": 10, "zsl_t1": 60.0, "gzsl_H": 20.0, "gzsl_u": 2.0},
        {"epoch": 15, "zsl_t1": 60.0, "gzsl_H": 25.0, "gzsl_u": 3.0},
    ]
    assert best_epochs(hist, {"zsl": "zsl_t1", "gzsl": "gzsl_H"}) == {"zsl": 10, "gzsl": 5}
    assert task_metrics(hist[0], "gzsl") == {"gzsl_H": 30.0, "gzsl_u": 1.0}
    assert task_metrics(hist[0], "zsl") == {"zsl_t1": 50.0}
