"""A conditional VAE (the CVAE branch of f-VAEGAN and of Gao et al. 2018, without any GAN): the example of
``docs/architecture.md`` — a new method is this module plus ``conf/method/cvae.yaml``.

``min_{E,G} KL(q(z | x, c) || N(0, I)) − E_q[log p_G(x | z, c)]`` (f-VAEGAN Eq. 1; Gao et al. Eqs. 4–5), with
a Bernoulli likelihood (BCE of sigmoid outputs against MinMax-scaled features). Unseen features are decoded
from prior noise; evaluation is the generative core's.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from zsl_lightning.losses import gaussian_kl, vae_bce_loss
from zsl_lightning.methods.generative import GenerativeZSLMethod
from zsl_lightning.nn.mlp import GaussianEncoder


class CVAE(GenerativeZSLMethod):
    """Conditional VAE. Optimizers (return order): ``e`` (encoder), ``g`` (decoder = generator)."""

    label_modes = ("single", "multi")
    optimizer_roles = ("e", "g")

    def __init__(self, encoder: GaussianEncoder, generator: nn.Module, optimizer_e: Callable,
                 optimizer_g: Callable, **kw):
        super().__init__(**kw)
        self.encoder, self.generator = encoder, generator
        self.register_optimizer("e", optimizer_e, self.encoder.parameters)
        self.register_optimizer("g", optimizer_g, self.generator.parameters)

    def vae_loss(self, x, cond) -> tuple:
        """f-VAEGAN Eq. (1): ``KL(q(z|x,c) || p(z)) + BCE(G(z, c), x)``."""
        mu, logvar = self.encoder(x.flatten(1), cond.vector)
        recon = self.generate(GaussianEncoder.sample(mu, logvar), cond)
        kl, bce = gaussian_kl(mu, logvar), vae_bce_loss(recon, x.flatten(1))
        return kl + bce, {"loss_kl": kl.detach(), "loss_recon": bce.detach()}

    def training_step(self, batch, batch_idx):
        x, cond = batch["x"][0], self.condition(batch["target"][0])
        parts: dict = {}
        loss = self.step_collecting(("e", "g"), lambda: self.vae_loss(x, cond), parts)
        self.log_losses({"loss": loss, **parts}, prog_bar=("loss",))
