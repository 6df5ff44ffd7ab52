"""Conditional WGAN-GP (Gulrajani et al. 2017, Eq. 3), as used by f-CLSWGAN (Xian et al. 2018, Eq. 2:
``L_WGAN``), f-VAEGAN, Gupta et al. (Eq. 6) and VS-Boost (Eq. 1). Those papers write the value the critic
maximises, ``L_WGAN = E[D(x, a)] − E[D(x̃, a)] − λ E[(‖∇_x̂ D(x̂, a)‖₂ − 1)²]``; the functions here are the
two sides of it, as losses to minimise."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def gradient_penalty(critic: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     *cond: torch.Tensor) -> torch.Tensor:
    """The gradient-penalty term of ``L_WGAN`` (f-CLSWGAN Eq. 2, Gulrajani et al. Eq. 3, VS-Boost Eq. 1,
    Gupta et al. Eq. 6): ``E[(‖∇_x̂ D(x̂, a)‖₂ − 1)²]`` with ``x̂ = α x + (1 − α) x̃``, α ~ U(0, 1) per sample
    (λ is applied by the caller).

    ``fake`` should be detached; the graph of the penalty is kept (``create_graph``) so that its
    gradient reaches the critic's weights. The critic runs eagerly here even when it is compiled
    (``trainer.compile``): torch.compile's autograd does not support the double backward this needs.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    with torch.compiler.set_stance("force_eager"):
        out = critic(x_hat, *cond)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def wgan_critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor, gp: torch.Tensor, lambda_gp: float) -> torch.Tensor:
    """Critic side of the WGAN-GP objective, ``max_D L_WGAN`` negated to minimise:
    ``E[D(x̃, a)] − E[D(x, a)] + λ · GP`` (f-CLSWGAN Eq. 2, VS-Boost Eq. 1, Gupta et al. Eq. 6)."""
    return d_fake.mean() - d_real.mean() + lambda_gp * gp


def wgan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Generator side of the WGAN objective, ``min_G L_WGAN`` (f-CLSWGAN Eq. 2 / Eq. 4, VS-Boost Eq. 1,
    Gupta et al. Eq. 7): only ``−E[D(x̃, a)]``, ``x̃ = G(z, a)``, depends on G, so the loss is
    ``−E[D(G(z, a), a)]`` (the method adds its own terms, e.g. f-CLSWGAN's ``β L_CLS``)."""
    return -d_fake.mean()


def standard_gan_discriminator_loss(d_real: torch.Tensor, d_fakes: list[torch.Tensor]) -> torch.Tensor:
    """Standard (non-saturating, logit) GAN discriminator loss, Gao et al. Eq. (7):
    ``−E[log σ(D(x))] − Σ_fake E[log(1 − σ(D(x̃)))]``."""
    loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
    for d_fake in d_fakes:
        loss = loss + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    return loss


def standard_gan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Generator term of Gao et al. Eq. (6): ``−E[log σ(D(x̃))]`` (one fake batch)."""
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
