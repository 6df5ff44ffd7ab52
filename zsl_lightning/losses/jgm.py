"""Losses of Gao et al. 2018 (joint generative model) that are not shared with other papers."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def categorizer_loss(logits_real: torch.Tensor, y_real: torch.Tensor, logits_fakes: list[torch.Tensor],
                     fake_class: int) -> torch.Tensor:
    """Eq. (8): ``−E[log p_C(y_s | x_s)] − Σ_fake E[log p_C(y_f | x̃)]`` — real features to their class,
    every synthesised batch (x_p, x_f) to the extra "fake" class ``fake_class`` (= C_s, the last output)."""
    loss = F.cross_entropy(logits_real, y_real)
    for logits in logits_fakes:
        target = torch.full((logits.shape[0],), int(fake_class), dtype=torch.long, device=logits.device)
        loss = loss + F.cross_entropy(logits, target)
    return loss


def perceptual_loss(h_real: torch.Tensor, h_fake: torch.Tensor) -> torch.Tensor:
    """One term of Eq. (9): ``||f(x_s) − f(x_f)||²₂``, squared L2 over the hidden units, averaged over the batch."""
    return (h_real - h_fake).pow(2).sum(dim=1).mean()
