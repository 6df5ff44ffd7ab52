"""GBE-MLZSL losses (Liu et al. 2023, Eqs. 13-17) on hand-computed values."""

import math

import pytest
import torch

from zsl_lightning.losses.gbe import diversity_weight, gbe_loss, ranknet_loss, variance_regulariser


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_ranknet_hand_values():
    scores = torch.tensor([[3.0, 1.0, 2.0, 0.0],
                           [0.5, 2.0, -1.0, 4.0],
                           [1.0, 2.0, 3.0, 4.0]])
    labels = torch.tensor([[1, -1, -1, 0],  # one positive, two negatives, one unknown
                           [1, 1, -1, 0],  # two positives, one negative
                           [1, 0, 0, 1]])  # no negative: contributes 0
    got = ranknet_loss(scores, labels)
    want0 = (softplus(1 - 3) + softplus(2 - 3)) / 2
    want1 = (softplus(-1 - 0.5) + softplus(-1 - 2)) / 2
    torch.testing.assert_close(got, torch.tensor([want0, want1, 0.0]))


def test_ranknet_matches_pairwise_loop_and_ignores_unknown():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 12, generator=g)
    labels = torch.randint(-1, 2, (4, 12), generator=g)
    got = ranknet_loss(scores, labels)
    for i in range(4):
        p = scores[i][labels[i] == 1]
        n = scores[i][labels[i] == -1]
        want = torch.nn.functional.softplus(n[:, None] - p[None, :]).mean() if len(p) and len(n) else 0.0
        torch.testing.assert_close(got[i], torch.as_tensor(want, dtype=torch.float32))
    # changing the score of an unknown label changes nothing
    unknown = (labels == 0).nonzero()[0]
    scores2 = scores.clone()
    scores2[unknown[0], unknown[1]] += 100.0
    torch.testing.assert_close(ranknet_loss(scores2, labels), got)


def test_ranknet_gradient_raises_positives_and_lowers_negatives():
    scores = torch.zeros(1, 3, requires_grad=True)
    ranknet_loss(scores, torch.tensor([[1, -1, 0]])).sum().backward()
    assert scores.grad[0, 0] < 0 < scores.grad[0, 1]
    assert scores.grad[0, 2] == 0


def test_diversity_weight_hand_values():
    w = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    labels = torch.tensor([[1, 1, -1, 0],  # var (1,3) = 2, var (0,0) = 0 -> 1 + 2
                           [1, -1, -1, -1],  # one positive -> 1
                           [1, 1, 1, -1]])  # var (1,3,0) = 7/3, var (0,0,2) = 4/3 -> 1 + 11/3
    torch.testing.assert_close(diversity_weight(labels, w), torch.tensor([3.0, 1.0, 14 / 3]))


def test_variance_regulariser_hand_values():
    s = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])  # n = 2 groups, d_w = 2
    torch.testing.assert_close(variance_regulariser(s), torch.tensor([2.0 + 8.0]))  # across groups
    torch.testing.assert_close(variance_regulariser(s, over="dims"), torch.tensor([0.5 + 4.5]))
    with pytest.raises(ValueError):
        variance_regulariser(s, over="rows")


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_total_loss_eq17_hand_value(lam):
    s = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], requires_grad=True)
    w = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([[1, -1, 1]])
    # scores (max over groups): 2, 1, 1; pairs (neg 1, pos 2) and (neg 1, pos 1)
    rank = (softplus(1 - 2) + softplus(1 - 1)) / 2
    omega = 1 + 0.5 + 0.5  # var(2, 1) + var(0, 1)
    reg = 0.5 + 0.5  # var(1, 0) + var(0, 1) across the two groups
    out = gbe_loss(s, w, labels, lam=lam)
    torch.testing.assert_close(out["loss"], torch.tensor(omega * (1 - lam) * rank + lam * reg))
    torch.testing.assert_close(out["omega"], torch.tensor(omega))
    out_plain = gbe_loss(s, w, labels, lam=lam, use_diversity=False)
    torch.testing.assert_close(out_plain["loss"], torch.tensor((1 - lam) * rank + lam * reg))
    out["loss"].backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()
