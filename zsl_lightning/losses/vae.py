"""Conditional-VAE terms (f-VAEGAN, Xian et al. 2019; Gao et al. 2018 Eqs. 4-5).

Both terms are computed in float32 with autocast switched off: under CUDA autocast
(``trainer.precision=16-mixed`` / ``bf16-mixed``) ``F.binary_cross_entropy`` is refused outright
("unsafe to autocast"), and in half precision ``1 - 1e-7`` rounds to 1 (log 0) and ``exp(logvar)``
overflows for logvar > 11.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


def fp32_region(t: torch.Tensor):
    """A context in which autocast is off on ``t``'s device (a no-op where autocast does not exist)."""
    kind = t.device.type
    if torch.amp.is_autocast_available(kind):
        return torch.autocast(device_type=kind, enabled=False)
    return contextlib.nullcontext()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) || N(0, I))`` summed over latent dims, averaged over the batch (Gao et al. Eq. 4)."""
    with fp32_region(mu):
        mu, logvar = mu.float(), logvar.float()
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / mu.shape[0]


def vae_bce_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli reconstruction ``−E[log p_G(x | z, a)]`` = binary cross-entropy summed over feature
    dims, averaged over the batch (f-VAEGAN; Gao et al. Eq. 5). Needs ``recon`` in (0, 1) (sigmoid
    generator) and ``x`` in [0, 1] (MinMax-preprocessed features); ``x`` is clamped to [0, 1] since
    MinMax-scaled features outside the training range may leave it. Always float32 (module docstring)."""
    with fp32_region(recon):
        r = recon.float().clamp(1e-12, 1 - 1e-7)
        t = x.detach().float().clamp(0, 1)
        return F.binary_cross_entropy(r, t, reduction="sum") / x.shape[0]
