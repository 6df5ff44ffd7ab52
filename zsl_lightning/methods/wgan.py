"""The conditional WGAN-GP core shared by f-CLSWGAN, f-VAEGAN, VS-Boost and Gupta et al.'s multi-label
generators, in both label modes: the critic loss (written once) and the critic phase of a generator iteration.

Critic side of f-CLSWGAN Eq. (2) / VS-Boost Eq. (1) / Gupta et al. Eq. (6), as a loss to minimise:
``γ_D · (E[D(x̃, c)] − E[D(x, c)] + λ E[(‖∇_x̂ D(x̂, c)‖₂ − 1)²])`` where ``c`` is the condition's vector
(``a``, or the mean label embedding ``e_µ``) and γ_D = 1 except in f-VAEGAN's released code (``gamma_d``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from zsl_lightning.losses import gradient_penalty, wgan_critic_loss
from zsl_lightning.methods.conditioning import Condition, as_condition
from zsl_lightning.methods.generative import GenerativeZSLMethod


class WGANMethod(GenerativeZSLMethod):
    """A generative method with a conditional generator ``G`` and WGAN-GP critic ``D`` (roles ``g`` and ``d``).

    One training step is one generator iteration (Lightning's manual-optimization GAN recipe, as the released
    scripts do it): :meth:`critic_phase` makes ``n_critic`` critic updates, each on its own batch of the step
    with fakes made without gradient; the subclass then updates its generator side on the last batch.

    Args:
        n_critic: critic updates per generator update (the sampler gives that many batches per step).
        lambda_gp: λ of the gradient penalty.
        gamma_d: scale of the critic's loss (f-VAEGAN's released ``--gammaD``; 1 = the papers).
        adaptive_gp: tf-VAEGAN's adaptive λ — ×1.1 when the mean penalty of a step exceeds 1.05, ÷1.1 below
            1.001 (off: the papers use a fixed λ = 10).
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, optimizer_g: Callable, optimizer_d: Callable,
                 n_critic: int = 5, lambda_gp: float = 10.0, gamma_d: float = 1.0, adaptive_gp: bool = False,
                 **kw):
        super().__init__(**kw)
        self.generator, self.discriminator = generator, discriminator
        self.n_critic, self.gamma_d, self.adaptive_gp = int(n_critic), float(gamma_d), bool(adaptive_gp)
        self.register_buffer("lambda_gp", torch.tensor(float(lambda_gp), dtype=torch.float64))  # exact λ
        self.register_optimizer("d", optimizer_d, self.discriminator.parameters)
        self.register_optimizer("g", optimizer_g, self.generator.parameters)

    def critic_loss(self, x: torch.Tensor, cond: Condition | torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The critic's WGAN-GP loss (module docstring) on real ``x`` and detached ``fake``."""
        c = as_condition(cond).vector
        d_real, d_fake = self.discriminator(x, c), self.discriminator(fake, c)
        gp = gradient_penalty(self.discriminator, x, fake, c)
        loss = self.gamma_d * wgan_critic_loss(d_real, d_fake, gp, float(self.lambda_gp))
        return loss, {"wasserstein": (d_real.mean() - d_fake.mean()).detach(), "gp": gp.detach()}

    def make_fake(self, x: torch.Tensor, cond: Condition) -> torch.Tensor:
        """The critic's fakes: ``G(z, c)`` with prior noise (f-VAEGAN may decode encoded noise instead)."""
        return self.generate(self.sample_noise(len(cond)), cond)

    def before_critic_batch(self, x: torch.Tensor, cond: Condition, parts: dict) -> None:
        """Hook run on each critic batch before its fakes are made (tf-VAEGAN trains its semantic decoder on
        the real batch here). Default: nothing."""

    def critic_phase(self, batch: dict, parts: dict) -> tuple[torch.Tensor, torch.Tensor, Condition, torch.Tensor]:
        """``n_critic`` critic updates, one per batch of the step (``batch["x"]``: k × B × ...). Returns the
        last critic loss and the last batch's features, condition and target (for the generator update)."""
        x_all, t_all = batch["x"], batch["target"]
        infos, loss = [], None
        for i in range(x_all.shape[0]):
            x, cond = x_all[i], self.condition(t_all[i])
            self.before_critic_batch(x, cond, parts)
            with torch.no_grad():
                fake = self.make_fake(x, cond)

            def run(x=x, cond=cond, fake=fake):
                value, info = self.critic_loss(x, cond, fake)
                infos.append(info)
                parts.update(info)
                return value

            loss = self.manual_step("d", run)
        if self.adaptive_gp:
            gp_mean = torch.stack([info["gp"] for info in infos]).mean()
            if gp_mean > 1.05:
                self.lambda_gp.mul_(1.1)
            elif gp_mean < 1.001:
                self.lambda_gp.div_(1.1)
            parts["lambda_gp"] = self.lambda_gp.clone()
        return loss, x_all[-1], cond, t_all[-1]
