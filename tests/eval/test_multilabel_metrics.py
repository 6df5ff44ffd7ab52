"""Multi-label metrics against hand-computed values (ties, unknown labels, labels without positives) and
against torchmetrics' binary average precision (the scikit-learn definition)."""

import math

import pytest
import torch
from torchmetrics.functional.classification import binary_average_precision

from zsl_lightning.eval.multilabel_metrics import (
    average_precision,
    mean_average_precision,
    multilabel_metrics,
    topk_prf,
)


def col(*v):
    return torch.tensor(v, dtype=torch.float32).unsqueeze(1)


def test_ap_hand_computed():
    # ranking + - + - : AP = (1/1 + 2/3) / 2
    ap = average_precision(col(0.9, 0.8, 0.7, 0.6), col(1, -1, 1, -1))
    assert ap.item() == pytest.approx((1 + 2 / 3) / 2)


def test_ap_ties_are_one_threshold_and_order_free():
    # {0.5: one + and one -} then {0.1: +}: R 1/2 at P 1/2, then R 1 at P 2/3
    expected = 0.5 * 0.5 + 0.5 * (2 / 3)
    a = average_precision(col(0.5, 0.5, 0.1), col(1, -1, 1)).item()
    b = average_precision(col(0.5, 0.5, 0.1), col(-1, 1, 1)).item()
    assert a == pytest.approx(expected) and b == pytest.approx(expected)


def test_ap_ignores_unknown_labels():
    # the unknown (0) image scores highest; among the known ones the negative comes first -> AP 1/2
    # (counting the unknown one as a negative would give 1/3)
    assert average_precision(col(0.9, 0.8, 0.7), col(0, -1, 1)).item() == pytest.approx(0.5)


def test_label_without_positive_is_skipped_or_zero():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    labels = torch.tensor([[1.0, -1.0], [-1.0, -1.0]])  # column 1 has no positive
    ap = average_precision(scores, labels)
    assert ap[0].item() == pytest.approx(1.0) and math.isnan(ap[1].item())
    assert mean_average_precision(scores, labels) == (pytest.approx(1.0), 1)
    assert mean_average_precision(scores, labels, empty="zero") == (pytest.approx(0.5), 2)


def test_ap_matches_torchmetrics_with_ties_and_unknowns():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (200, 7), generator=g).float() / 5  # many ties
    labels = torch.randint(-1, 2, (200, 7), generator=g).float()
    ours = average_precision(scores, labels)
    for j in range(7):
        known = labels[:, j] != 0
        ref = binary_average_precision(scores[known, j], (labels[known, j] > 0).long())
        assert ours[j].item() == pytest.approx(ref.item(), abs=1e-6)


def test_ap_blocks_do_not_change_the_result():
    g = torch.Generator().manual_seed(1)
    scores, labels = torch.rand(50, 130, generator=g), torch.randint(-1, 2, (50, 130), generator=g).float()
    assert torch.allclose(average_precision(scores, labels, block=7), average_precision(scores, labels, block=200),
                          equal_nan=True)


def test_topk_hand_computed_with_a_tie():
    scores = torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.2, 0.9]])
    labels = torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]])
    # image 0 predicts {0, 1}: 1 TP; image 1 predicts {2, 0} (tie 0/1 -> lower column): 0 TP
    p, r, f1 = topk_prf(scores, labels, 2)
    assert p == pytest.approx(1 / 4) and r == pytest.approx(1 / 3) and f1 == pytest.approx(2 / 7)


def test_topk_chunks_match_a_stable_full_sort_with_many_ties():
    g = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 4, (203, 17), generator=g).float()  # 4 distinct values: ties everywhere
    labels = torch.randint(-1, 2, (203, 17), generator=g).to(torch.int8)

    def reference(k):  # the definition: a stable descending sort, the first k columns
        top = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
        tp = int((torch.gather(labels, 1, top) > 0).sum())
        return tp / (len(scores) * k), tp / int((labels > 0).sum())

    for k in (1, 3, 5, 17, 40):
        for chunk in (17, 17 * 10, 1 << 22):  # one row per chunk, 10 rows, everything at once
            p, r, _ = topk_prf(scores, labels, k, chunk_elems=chunk)
            assert (p, r) == pytest.approx(reference(min(k, 17)))
    p16, r16, _ = topk_prf(scores.half(), labels, 3, chunk_elems=50)
    assert (p16, r16) == pytest.approx(reference(3))


def test_topk_counts_images_without_positives_and_ignores_unknowns():
    scores = torch.tensor([[0.9, 0.5], [0.9, 0.5]])
    labels = torch.tensor([[0.0, 1.0], [-1.0, -1.0]])  # image 0: top-1 is the unknown label
    p, r, f1 = topk_prf(scores, labels, 1)
    assert (p, r, f1) == (0.0, 0.0, 0.0)
    p, r, _ = topk_prf(scores, labels, 2)
    assert p == pytest.approx(1 / 4) and r == pytest.approx(1.0)


def test_multilabel_metrics_keys_and_percent():
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1]])
    labels = torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]])
    m = multilabel_metrics(scores, labels, [1, 2], "zsl")
    assert m["zsl_mAP"] == pytest.approx(100.0) and m["zsl_F1@1"] == pytest.approx(100.0)
    assert m["zsl_P@2"] == pytest.approx(50.0) and m["zsl_R@2"] == pytest.approx(100.0)
    assert m["zsl_mAP_labels"] == 2.0  # the third label has no positive
