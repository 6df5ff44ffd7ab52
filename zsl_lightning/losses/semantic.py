"""The cycle-consistency (semantic reconstruction) loss of tf-VAEGAN (Narayan et al., ECCV 2020).

Eq. (3) of the paper, as we read it: ``L_R = E[‖Dec(x) − a‖₁] + E[‖Dec(x̃) − a‖₁]`` — the decoder maps real
features ``x`` and synthesised features ``x̃`` back to their class embedding ``a``. The released code
replaces the plain L1 norm with a weighted L1 (``kind="weighted_l1"``, the default here):

``ℓ(â, a) = Σ_j w_j |â_j − a_j|`` with ``w_j = (â_j − a_j)² / ‖â − a‖₂``, i.e. ``Σ_j |d_j|³ / ‖d‖₂``,

averaged over the batch. Large per-dimension errors weigh more. ``kind="l1"`` is the paper's
``Σ_j |â_j − a_j|`` averaged over the batch. The denominator is clamped at 1e-12 (a perfect reconstruction
gives 0, not 0/0).
"""

from __future__ import annotations

import torch

KINDS = ("weighted_l1", "l1")


def semantic_reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "weighted_l1") -> torch.Tensor:
    """One term of tf-VAEGAN Eq. (3) on a batch (module docstring): summed over embedding dims, averaged over rows."""
    d = pred - target
    if kind == "l1":
        return d.abs().sum(1).mean()
    if kind == "weighted_l1":
        w = d.pow(2) / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (w * d.abs()).sum(1).mean()
    raise ValueError(f"unknown semantic reconstruction loss '{kind}' ({' | '.join(KINDS)})")
