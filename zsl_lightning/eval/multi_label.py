"""ZSL / GZSL evaluation on a multi-label split (metrics of :mod:`.multilabel_metrics`, in percent).

ZSL scores the split's unseen labels on the ZSL evaluation images; GZSL scores all labels on the GZSL
evaluation images. In standard mode (``data.mode=standard``, Gupta et al. Table 4) there is one task,
``std``: every label is seen and all of them are scored (metrics ``std_mAP``, ``std_F1@k``, ...).
A method provides ``fit_scorer(split, kind, classes, select_fn)`` returning a callable ``x -> scores`` over
``classes`` (global label ids, in the evaluation file's column order); ``kind`` is the classifier asked
for — ``zsl`` (unseen labels only) or ``gzsl`` (every label of the split; also used by ``std``). Images
are scored in chunks of ``split.chunk_rows``; one score per (image, label) is kept for the ranking metrics.
"""

from __future__ import annotations

import sys

import torch

from zsl_lightning.errors import ConfigError
from zsl_lightning.eval.multilabel_metrics import average_precision, multilabel_metrics
from zsl_lightning.methods.divergence import refuse_non_finite

SCORE_DTYPES = ("auto", "float32", "float16")


def check_scores_dtype(setting: str) -> str:
    if setting not in SCORE_DTYPES:
        raise ConfigError("data.eval_scores_dtype must be auto | float32 | float16.")
    return setting


def scores_dtype(setting: str, max_gb: float, where: str, *shapes: tuple[int, int]) -> str:
    """The dtype of the kept score matrices (``data.eval_scores_dtype``, ``data.eval_scores_max_gb``).

    ``auto``: float32 unless the largest evaluation's score matrix (``shapes``: images × labels of each task)
    exceeds ``max_gb``, then float16 (with a notice naming ``where``: its ties can move AP, see
    docs/methods/multilabel.md)."""
    if setting != "auto":
        return setting
    gb = max(r * c for r, c in shapes) * 4 / 2**30
    if gb <= max_gb:
        return "float32"
    print(f"[zsl-lightning] {where}: float32 evaluation scores would take {gb:.1f} GB > "
          f"data.eval_scores_max_gb={max_gb:g}; keeping them as float16 (rounding ties can "
          "move AP slightly; raise data.eval_scores_max_gb or set data.eval_scores_dtype=float32).",
          file=sys.stderr)
    return "float16"


@torch.no_grad()
def score_store(scorer, store, device, chunk_rows: int, dtype: str = "float32") -> tuple[torch.Tensor, torch.Tensor]:
    """Scores (CPU, ``dtype``) and int8 labels of every image of ``store``, written chunk by chunk into
    preallocated tensors (no list + cat: the score matrix exists once)."""
    scores = labels = None
    i = 0
    for x, y in store.chunks(chunk_rows):
        s = scorer(x.to(device))
        refuse_non_finite(s, "the evaluation scores")
        if scores is None:
            scores = torch.empty(len(store), s.shape[1], dtype=getattr(torch, dtype))
            labels = torch.empty(len(store), y.shape[1], dtype=torch.int8)
        scores[i : i + len(s)] = s
        labels[i : i + len(y)] = y
        i += len(s)
    if scores is None:
        return torch.empty(0, 0), torch.empty(0, 0, dtype=torch.int8)
    return scores, labels


def evaluate_task(scorer, split, task: str, device, empty: str = "skip", details: dict | None = None) -> dict[str, float]:
    """The metrics of ``task``; ``details``: when given, ``details[task]`` gets the per-label APs computed for
    mAP (:func:`zsl_lightning.eval.per_class.multi_label_details`)."""
    store, cols = next((st, c) for t, _, st, c in split.eval_tasks if t == task)
    scores, labels = score_store(scorer, store, device, split.chunk_rows, split.eval_scores_dtype)
    if details is None:
        return multilabel_metrics(scores, labels, split.top_k, task, empty)
    from zsl_lightning.eval.per_class import multi_label_details

    ap = average_precision(scores, labels)
    details[task] = multi_label_details(split, task, cols, ap, labels)
    return multilabel_metrics(scores, labels, split.top_k, task, empty, ap=ap)


def evaluate_multi_label(method, split, select_on_test: bool = False, details: dict | None = None) -> dict[str, float]:
    """Fit the method's scorer of every task (ZSL and GZSL; or ``std``) and compute mAP and P / R / F1 at each
    top-K.

    ``select_on_test`` lets a trainable final classifier keep its best epoch (by mAP) on the evaluated
    images — the papers' protocol, only ever set for ``eval.select=test_best``. ``details``: when given, filled
    with every task's per-label AP (:mod:`zsl_lightning.eval.per_class`).
    """
    empty = str(method.eval_cfg.extra.get("map_empty_labels", "skip"))
    out: dict[str, float] = {}
    for task, kind, _, cols in split.eval_tasks:
        select = None
        if select_on_test:
            def select(sc, task=task):
                return evaluate_task(sc, split, task, method.device, empty)[f"{task}_mAP"]
        scorer = method.fit_scorer(split, kind, cols, select_fn=select)
        out.update(evaluate_task(scorer, split, task, method.device, empty, details))
    return out
