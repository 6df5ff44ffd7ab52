"""ZSL / GZSL evaluation of a method on a single-label split (metrics in percent)."""

from __future__ import annotations

import torch

from zsl_lightning.eval.metrics import harmonic_mean, per_class_accuracy
from zsl_lightning.methods.divergence import refuse_non_finite


def _predict(scorer, x: torch.Tensor, calib_mask: torch.Tensor | None = None, gamma: float = 0.0,
             chunk: int = 65536) -> torch.Tensor:
    preds = []
    for i in range(0, x.shape[0], chunk):
        s = scorer(x[i : i + chunk])
        refuse_non_finite(s, "the evaluation scores")
        if gamma and calib_mask is not None:
            s = s - gamma * calib_mask  # calibrated stacking (Chao et al. 2016)
        preds.append(scorer.classes[s.argmax(1)])
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=x.device)


def zsl_accuracy(scorer, split) -> float:
    pred = _predict(scorer, split.test_unseen_x)
    return 100.0 * per_class_accuracy(pred, split.test_unseen_y, split.unseen_classes)


def _gzsl_predictions(scorer, split, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions (global ids, among all classes) of the unseen and the seen test images."""
    mask = torch.isin(scorer.classes, split.seen_classes).to(split.test_seen_x.dtype)
    return (_predict(scorer, split.test_unseen_x, mask, gamma), _predict(scorer, split.test_seen_x, mask, gamma))


def _gzsl_from(pred_u: torch.Tensor, pred_s: torch.Tensor, split) -> dict[str, float]:
    u = per_class_accuracy(pred_u, split.test_unseen_y, split.unseen_classes)
    s = per_class_accuracy(pred_s, split.test_seen_y, split.seen_classes)
    return {"gzsl_u": 100.0 * u, "gzsl_s": 100.0 * s, "gzsl_H": 100.0 * harmonic_mean(u, s)}


def gzsl_metrics(scorer, split, gamma: float = 0.0) -> dict[str, float]:
    return _gzsl_from(*_gzsl_predictions(scorer, split, gamma), split)


def evaluate_single_label(method, split, select_on_test: bool = False, details: dict | None = None) -> dict[str, float]:
    """Fit the method's ZSL and GZSL scorers (``method.fit_scorer``) and compute T1 and u / s / H.

    ``select_on_test`` lets a trainable final classifier keep its best epoch on the evaluated split
    (the papers' test-set protocol); it is only ever set for ``eval.select=test_best``.
    ``details``: when given, filled from the same predictions with each task's per-class accuracies and
    the GZSL confusion rates (:func:`zsl_lightning.eval.per_class.single_label_details`).
    """
    from zsl_lightning.eval.per_class import single_label_details

    gamma = float(method.eval_cfg.calibrated_stacking)
    seen, unseen = split.seen_classes, split.unseen_classes
    zsl = method.fit_scorer(split, "zsl", unseen,
                            select_fn=(lambda sc: zsl_accuracy(sc, split)) if select_on_test else None)
    pred_zsl = _predict(zsl, split.test_unseen_x)
    out = {"zsl_t1": 100.0 * per_class_accuracy(pred_zsl, split.test_unseen_y, unseen)}
    gz = method.fit_scorer(split, "gzsl", torch.cat([seen, unseen]),
                           select_fn=(lambda sc: gzsl_metrics(sc, split, gamma)["gzsl_H"]) if select_on_test else None)
    pred_u, pred_s = _gzsl_predictions(gz, split, gamma)
    out.update(_gzsl_from(pred_u, pred_s, split))
    if details is not None:
        details.update(single_label_details(split, pred_zsl, pred_u, pred_s))
    return out
