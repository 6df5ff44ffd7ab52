"""GBE-MLZSL losses (Liu et al. 2023, Sec. III-F, Eqs. 13–17), after Fast0Tag [43] and SDL [44].

Labels are ``(B, L)`` over the training (seen) label columns: ``+1`` present (``p_k``), ``−1`` absent
(``n_j``), ``0`` unknown/unannotated (ignored: neither positive nor negative). Scores are
``max_m ⟨S^m, w_l⟩`` (:func:`zsl_lightning.nn.gbe.group_max_scores`, Eq. 13).

All terms are computed in float32 (autocast off), per image, then combined by Eq. (17).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zsl_lightning.losses.vae import fp32_region
from zsl_lightning.nn.gbe import group_max_scores


def _padded(scores: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the scores where ``mask`` holds, packed left into ``(B, max_count)`` with a validity mask."""
    width = max(int(mask.sum(dim=1).max().item()) if mask.numel() else 0, 1)
    order = torch.argsort(mask.to(torch.int8), dim=1, descending=True, stable=True)[:, :width]
    return scores.gather(1, order), mask.gather(1, order)


def ranknet_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eqs. (13)–(14) of Liu et al. 2023, per image:

    ``τ_jk = score(n_j) − score(p_k)``, ``L_rank = α Σ_j Σ_k log(1 + e^{τ_jk})``,
    ``α = (|T|·|T̄|)^{-1}`` (the mean over positive × negative pairs).

    ``scores`` ``(B, L)`` (already the max over groups), ``labels`` ``(B, L)`` in {+1, −1, 0}. Returns
    ``(B,)``; an image without a positive or without a negative label contributes 0. Memory is
    ``B × max|T̄| × max|T|``, not ``B × L × L``.
    """
    with fp32_region(scores):
        s = scores.float()
        pos, neg = labels > 0, labels < 0
        pos_s, pos_ok = _padded(s, pos)
        neg_s, neg_ok = _padded(s, neg)
        tau = neg_s[:, :, None] - pos_s[:, None, :]  # (B, |T̄|max, |T|max)
        pair = (neg_ok[:, :, None] & pos_ok[:, None, :]).float()
        n_pairs = pos.sum(dim=1).float() * neg.sum(dim=1).float()
        total = (F.softplus(tau) * pair).sum(dim=(1, 2))
        return torch.where(n_pairs > 0, total / n_pairs.clamp(min=1.0), torch.zeros_like(total))


def diversity_weight(labels: torch.Tensor, word_vectors: torch.Tensor) -> torch.Tensor:
    """Eq. (15) of Liu et al. 2023, ``ω = 1 + Σ var(Y_i)``, read as in SDL [44] (which the paper follows):
    per image, ``ω_i = 1 + Σ_d var_k(p_{k,d})``, the sample (unbiased) variance over the image's positive
    labels' word vectors, summed over the ``d_w`` dimensions; ``ω_i = 1`` with fewer than 2 positives.

    ``labels`` ``(B, L)``, ``word_vectors`` ``(L, d_w)`` → ``(B,)``. Not differentiated (a weight).
    """
    with torch.no_grad(), fp32_region(word_vectors):
        w = word_vectors.float()
        pos = (labels > 0).float()
        k = pos.sum(dim=1)
        s1 = pos @ w  # Σ_k p_k
        s2 = pos @ (w * w).sum(dim=1)  # Σ_k ‖p_k‖²
        var_sum = (s2 - (s1 * s1).sum(dim=1) / k.clamp(min=1.0)) / (k - 1).clamp(min=1.0)
        return 1.0 + torch.where(k >= 2, var_sum.clamp(min=0.0), torch.zeros_like(var_sum))


def variance_regulariser(S: torch.Tensor, over: str = "groups") -> torch.Tensor:
    """Eq. (16) of Liu et al. 2023, ``L_reg = ‖Σ_n var(S_i^n)‖₁``, per image ``(B,)``.

    ``over="groups"`` (default, SDL's regulariser [44]): the sample variance of each of the ``d_w``
    coordinates across the ``n`` group vectors, then the L1 norm over coordinates.
    ``over="dims"`` (the literal reading): the variance of each group vector's ``d_w`` entries, summed
    over the ``n`` groups. ``S`` ``(B, n, d_w)``; 0 for ``n = 1`` with ``"groups"``.
    """
    with fp32_region(S):
        s = S.float()
        if over == "groups":
            if s.shape[1] < 2:
                return s.new_zeros(s.shape[0])
            return s.var(dim=1).abs().sum(dim=1)
        if over == "dims":
            return s.var(dim=2).sum(dim=1).abs()
        raise ValueError(f"variance_regulariser: over must be 'groups' or 'dims', got '{over}'")


def gbe_loss(S: torch.Tensor, word_vectors: torch.Tensor, labels: torch.Tensor, lam: float = 0.3,
             use_diversity: bool = True, reg_over: str = "groups") -> dict[str, torch.Tensor]:
    """Eq. (17) of Liu et al. 2023: ``L = (1/N) Σ_i [ω_i (1 − λ) L_rank(S_i, Y_i) + λ L_reg(S_i)]``.

    ``S`` ``(B, n, d_w)``, ``word_vectors`` ``(L, d_w)`` of the label columns of ``labels`` ``(B, L)``.
    ``use_diversity=False`` sets ``ω = 1``. Returns ``{"loss", "rank", "reg", "omega"}`` (batch means;
    ``loss`` carries the gradient).
    """
    rank = ranknet_loss(group_max_scores(S, word_vectors), labels)
    omega = diversity_weight(labels, word_vectors) if use_diversity else torch.ones_like(rank)
    reg = variance_regulariser(S, reg_over)
    total = (omega * (1.0 - lam) * rank + lam * reg).mean()
    return {"loss": total, "rank": rank.mean(), "reg": reg.mean(), "omega": omega.mean()}
