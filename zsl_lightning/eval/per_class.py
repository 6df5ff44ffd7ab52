"""Per-class numbers of an evaluation, kept for the epoch each task reports (``results.json["per_class"]``).

Every evaluation (:meth:`~zsl_lightning.methods.base.ZSLMethod.run_evaluation`) fills, from the predictions
or scores it already computed (no extra pass), a *details* dict: task → group → columns, where a group is
``unseen`` or ``seen`` and its columns are tensors ``class`` (global ids), ``value`` (percent) and ``n``:

* single-label (Xian et al. 2018's protocol): ``value`` is the top-1 accuracy of the class's test images
  (their mean is ``zsl_t1``, ``gzsl_u`` or ``gzsl_s``), ``n`` their number. ``zsl`` has the group ``unseen``
  (prediction among unseen classes); ``gzsl`` has ``unseen`` and ``seen`` (prediction among all classes) and
  ``confusion``: the share (percent) of seen test images predicted as *some* unseen class (``seen_to_unseen``)
  and of unseen test images predicted as some seen class (``unseen_to_seen``), counted over images;
* multi-label: ``value`` is the label's AP (its mean over the labels with a positive is the task's mAP with
  ``eval.map_empty_labels=skip``; NaN → ``null`` for a label without a positive), ``n`` its positive
  images. ``zsl`` has ``unseen``; ``gzsl`` has ``unseen`` and ``seen`` (one ranking over all labels, split
  afterwards); ``std`` (standard mode) has ``seen``.

:func:`per_class_results` turns the details of the selected epochs into JSON with class names; see
docs/evaluation.md ("Per-class results").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from zsl_lightning.eval.metrics import class_accuracies, cross_rate

METRIC = {"single": "top-1 accuracy (%)", "multi": "AP (%)"}
COUNT = {"single": "test images of the class", "multi": "positive images of the label"}


def group(classes: torch.Tensor, value: torch.Tensor, n: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"class": classes.detach().long().cpu(), "value": value.detach().double().cpu(), "n": n.detach().long().cpu()}


def single_label_details(split, pred_zsl: torch.Tensor, pred_u: torch.Tensor, pred_s: torch.Tensor) -> dict:
    """Details of a single-label evaluation from its predictions (global ids): ZSL among the unseen classes
    (``pred_zsl``), GZSL among all classes for the unseen (``pred_u``) and seen (``pred_s``) test images."""
    seen, unseen = split.seen_classes, split.unseen_classes

    def accuracies(pred, target, classes):
        acc, n = class_accuracies(pred, target, classes)
        return group(classes, 100.0 * acc, n)

    return {
        "zsl": {"unseen": accuracies(pred_zsl, split.test_unseen_y, unseen)},
        "gzsl": {
            "unseen": accuracies(pred_u, split.test_unseen_y, unseen),
            "seen": accuracies(pred_s, split.test_seen_y, seen),
            "confusion": {"seen_to_unseen": 100.0 * cross_rate(pred_s, unseen),
                          "unseen_to_seen": 100.0 * cross_rate(pred_u, seen),
                          "seen_images": int(pred_s.numel()), "unseen_images": int(pred_u.numel())},
        },
    }


def positives(labels: torch.Tensor, chunk_elems: int = 1 << 22) -> torch.Tensor:
    """Positive images (+1 entries) of every column of an int8 label matrix, counted over row blocks of about
    ``chunk_elems`` entries (no N × C int64 temporary)."""
    n, c = labels.shape
    rows = max(1, int(chunk_elems) // max(1, c))
    out = torch.zeros(c, dtype=torch.long)
    for i in range(0, n, rows):
        out += torch.count_nonzero(labels[i : i + rows] > 0, dim=0).cpu()
    return out


def multi_label_details(split, task: str, cols: torch.Tensor, ap: torch.Tensor, labels: torch.Tensor) -> dict:
    """Details of one multi-label task: per-label AP (``ap``, fraction) of the columns ``cols`` (global ids),
    grouped into unseen and seen labels of ``split``."""
    cols = cols.detach().long().cpu()
    value, n = 100.0 * ap.detach().double().cpu(), positives(labels)
    is_seen = torch.isin(cols, split.seen_classes.detach().cpu())
    if task == "zsl":
        return {"unseen": group(cols, value, n)}
    out = {}
    for name, mask in (("unseen", ~is_seen), ("seen", is_seen)):
        if task != "std" or name == "seen":
            out[name] = group(cols[mask], value[mask], n[mask])
    return out


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def group_json(g: Mapping[str, torch.Tensor], names: Sequence[str]) -> dict[str, list]:
    ids = [int(c) for c in g["class"].tolist()]
    return {"class": ids, "name": [names[c] if c < len(names) else str(c) for c in ids],
            "value": [_num(v) for v in g["value"].tolist()], "n": [int(v) for v in g["n"].tolist()]}


def per_class_results(details_by_epoch: Mapping[int, Mapping], chosen: Mapping[str, int], label_mode: str,
                      class_names: Sequence[str]) -> dict:
    """``results.json["per_class"]``: for every task of ``chosen`` (task → selected epoch) whose evaluation at
    that epoch kept details, ``{"epoch": e, <group>: {"class", "name", "value", "n"}, ...}`` (GZSL single-label
    also ``"confusion"``), plus ``"metric"`` and ``"n"`` saying what the columns hold."""
    out: dict = {"metric": METRIC[label_mode], "n": COUNT[label_mode]}
    for task, epoch in chosen.items():
        det = (details_by_epoch.get(int(epoch)) or {}).get(task)
        if det is None:
            continue
        entry: dict = {"epoch": int(epoch)}
        for key, val in det.items():
            if key == "confusion":
                entry[key] = {k: (_num(v) if isinstance(v, float) else v) for k, v in val.items()}
            else:
                entry[key] = group_json(val, class_names)
        out[task] = entry
    return out


def table_rows(per_class: Mapping) -> list[tuple]:
    """``(task, group, class, name, value, n)`` rows of ``results.json["per_class"]`` (the W&B table)."""
    rows = []
    for task, entry in per_class.items():
        if not isinstance(entry, Mapping):
            continue
        for grp in ("unseen", "seen"):
            g = entry.get(grp)
            if g:
                rows += [(task, grp, c, nm, v, n) for c, nm, v, n in zip(g["class"], g["name"], g["value"], g["n"],
                                                                         strict=True)]
    return rows
