"""Single-label ZSL / GZSL metrics (Xian et al. 2018's protocol).

* per-class mean top-1 accuracy (Gao et al. Eq. 16): ``acc = 1/|C| Σ_c (#correct in c / #images of c)``;
* ZSL T1: over the unseen classes, predicting among unseen classes only;
* GZSL: ``u`` = per-class accuracy on the unseen test images predicting among *all* classes,
  ``s`` = the same on the seen test images, ``H = 2us / (u + s)`` (Gao et al. Eq. 17).

Everything is computed in floating point and vectorised with ``bincount`` (the integer division of
old torch versions broke per-class accuracy in some released code).
"""

from __future__ import annotations

import torch


def per_class_accuracy(pred: torch.Tensor, target: torch.Tensor, classes: torch.Tensor) -> float:
    """Mean over ``classes`` of the per-class top-1 accuracy. ``pred`` / ``target`` hold global ids.

    Classes of ``classes`` that have no test image are left out of the mean (a benchmark never has
    them; the loaders reject empty splits).
    """
    acc, _ = class_accuracies(pred, target, classes)
    acc = acc[~acc.isnan()]
    return float(acc.mean()) if acc.numel() else float("nan")


def class_accuracies(pred: torch.Tensor, target: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(accuracy, count)`` of every class of ``classes`` (in its order): the top-1 accuracy of its test
    images (float64 in [0, 1]; NaN for a class without one) and their number. The mean of the non-NaN
    accuracies is :func:`per_class_accuracy`."""
    if classes.numel() == 0:
        return torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.long)
    n = 1 + max([int(classes.max())] + ([int(target.max()), int(pred.max())] if target.numel() else []))
    total = torch.bincount(target, minlength=n).double()
    correct = torch.bincount(target[pred == target], minlength=n).double()
    t, c = total[classes], correct[classes]
    return torch.where(t > 0, c / t.clamp(min=1), torch.full_like(t, float("nan"))), t.long()


def cross_rate(pred: torch.Tensor, other: torch.Tensor) -> float:
    """The fraction of ``pred`` (global ids) that fall in ``other`` (e.g. seen test images predicted as an
    unseen class); NaN for no prediction."""
    if pred.numel() == 0:
        return float("nan")
    return float(torch.isin(pred, other).double().mean())


def harmonic_mean(u: float, s: float) -> float:
    """``H = 2us / (u + s)`` (0 when both are 0)."""
    return 0.0 if u + s <= 0 else 2.0 * u * s / (u + s)
