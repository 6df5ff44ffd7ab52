"""Conditional-VAE terms (f-VAEGAN, Xian et al. 2019; Gao et al. 2018 Eqs. 4-5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) || N(0, I))`` summed over latent dims, averaged over the batch (Gao et al. Eq. 4)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / mu.shape[0]


def vae_bce_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli reconstruction ``−E[log p_G(x | z, a)]`` = binary cross-entropy summed over feature
    dims, averaged over the batch (f-VAEGAN; Gao et al. Eq. 5). Needs ``recon`` in (0, 1) (sigmoid
    generator) and ``x`` in [0, 1] (MinMax-preprocessed features); ``x`` is clamped to [0, 1] since
    MinMax-scaled features outside the training range may leave it."""
    return F.binary_cross_entropy(recon.clamp(1e-12, 1 - 1e-7), x.detach().clamp(0, 1), reduction="sum") / x.shape[0]
