"""Multi-label ZSL metrics (the BiAM / LESA / Generative_MLZSL protocol), vectorised in torch.

Labels are +1 (positive), -1 (negative) or 0 (unknown).

* **AP per label** over the images whose label is known (±1), ranking by score. Tied scores are handled
  like scikit-learn's ``average_precision_score``: a group of equal scores is one threshold, so the result
  does not depend on the order of tied images. ``AP = Σ_thresholds (R_n − R_{n−1}) · P_n``.
* **mAP** = mean AP over the labels that have at least one positive image. A label with no positive has
  no defined AP and is left out (the released code counts it as AP 0, which lowers the mean; ``mAP`` here
  reports the number of labels it averaged). ``empty="zero"`` reproduces the released behaviour.
* **P / R / F1 at top-K** (micro): for every image the K highest-scoring labels (ties: lower column first)
  are predicted; TP = predicted labels that are +1; ``P = ΣTP / (N·K)``, ``R = ΣTP / #(+1 entries)``,
  ``F1 = 2PR / (P + R)``. Every image is kept, also those without a positive label.
"""

from __future__ import annotations

import torch


def average_precision(scores: torch.Tensor, labels: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """AP of every column (label); NaN for a label without a positive among its known images.

    Columns are processed ``block`` at a time (default: about 2M entries per block); a block needs ~16
    float64 / int64 temporaries of N × block (N = 107,859: 19 columns, ~0.25 GB in all)."""
    n, c = scores.shape
    block = int(block) if block else max(1, (1 << 21) // max(n, 1))
    out = torch.empty(c, dtype=torch.float64)
    for j0 in range(0, c, block):
        s = scores[:, j0 : j0 + block].double()
        y = labels[:, j0 : j0 + block]
        known = y != 0
        pos = (y > 0).double()
        s = torch.where(known, s, torch.full_like(s, -float("inf")))
        order = torch.argsort(s, dim=0, descending=True, stable=True)
        s_sorted = torch.gather(s, 0, order)
        tp = torch.cumsum(torch.gather(pos, 0, order), 0)
        cnt = torch.cumsum(torch.gather(known.double(), 0, order), 0)
        # the last row of each group of equal scores closes a threshold
        end = torch.ones_like(s_sorted, dtype=torch.bool)
        end[:-1] = s_sorted[1:] != s_sorted[:-1]
        tp_end = torch.where(end, tp, torch.zeros_like(tp))
        prev_tp = torch.zeros_like(tp)
        # TP at the previous threshold = running max of tp_end over earlier rows
        prev_tp[1:] = torch.cummax(tp_end, 0).values[:-1]
        delta = torch.where(end, tp - prev_tp, torch.zeros_like(tp))
        precision = tp / cnt.clamp(min=1)
        total = pos.sum(0)
        ap = (delta * precision).sum(0) / total
        ap[total == 0] = float("nan")
        out[j0 : j0 + block] = ap.cpu()
    return out


def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor, empty: str = "skip",
                           ap: torch.Tensor | None = None) -> tuple[float, int]:
    """(mAP, number of labels averaged). ``empty``: ``skip`` labels without positives (default) or count them
    as ``zero`` (the released code). ``ap``: the labels' APs when already computed (:func:`average_precision`)."""
    ap = average_precision(scores, labels) if ap is None else ap
    if empty == "zero":
        return float(torch.nan_to_num(ap, nan=0.0).mean()), len(ap)
    valid = ~torch.isnan(ap)
    return (float(ap[valid].mean()) if valid.any() else float("nan")), int(valid.sum())


def topk_prf(scores: torch.Tensor, labels: torch.Tensor, k: int, chunk_elems: int = 1 << 22) -> tuple[float, float, float]:
    """Micro precision, recall and F1 of the top-``k`` labels of every image.

    Rows are processed in chunks of about ``chunk_elems`` scores with ``torch.topk`` (no N × C index
    matrix, no N × C temporary at all): per chunk a few ``chunk × C`` temporaries (float32 scores, bools,
    int32 ranks), ~16 MB each.
    Ties at the k-th score go to the lower columns, as a stable descending sort would do.
    """
    n, c = scores.shape
    k = min(int(k), c)
    if n == 0 or k == 0:
        return 0.0, 0.0, 0.0
    rows = max(1, int(chunk_elems) // max(1, c))
    tp = n_pos = 0
    for i in range(0, n, rows):
        s = scores[i : i + rows].float()
        pos = labels[i : i + rows] > 0
        kth = torch.topk(s, k, dim=1).values[:, -1:]  # the k-th largest score of each row
        above = s > kth
        tied = s == kth
        # among the scores equal to the k-th one, the lowest columns fill the remaining k - #above places
        free = k - above.sum(1, keepdim=True, dtype=torch.int32)
        take = above | (tied & (torch.cumsum(tied, 1, dtype=torch.int32) <= free))
        # count_nonzero: ``bool.sum()`` would upcast the whole operand to int64 first (8 B per entry)
        tp += int(torch.count_nonzero(take & pos))
        n_pos += int(torch.count_nonzero(pos))
    p = tp / (n * k)
    r = tp / n_pos if n_pos else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1


def multilabel_metrics(scores: torch.Tensor, labels: torch.Tensor, top_k, prefix: str, empty: str = "skip",
                       ap: torch.Tensor | None = None) -> dict:
    """``{prefix}_mAP`` and ``{prefix}_P@k / R@k / F1@k`` in percent, plus ``{prefix}_mAP_labels``; ``ap``: the
    per-label APs, when the caller keeps them (:func:`average_precision`)."""
    m, n_labels = mean_average_precision(scores, labels, empty, ap)
    out = {f"{prefix}_mAP": 100.0 * m}
    for k in top_k:
        p, r, f1 = topk_prf(scores, labels, k)
        out[f"{prefix}_F1@{k}"] = 100.0 * f1
        out[f"{prefix}_P@{k}"] = 100.0 * p
        out[f"{prefix}_R@{k}"] = 100.0 * r
    out[f"{prefix}_mAP_labels"] = float(n_labels)
    return out
