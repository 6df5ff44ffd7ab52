"""f-VAEGAN (inductive f-VAEGAN-D2 without D2; Xian, Sharma, Schiele, Akata, CVPR 2019).

A conditional VAE (encoder E, decoder = generator G) and a conditional WGAN share G:
``L = L_VAE + γ L_WGAN`` with ``L_VAE = KL(q(z|x,a) || p(z)) − E_q[log p(x|z,a)]`` (f-VAEGAN Eq. 1)
and the WGAN-GP loss of f-CLSWGAN (f-VAEGAN Eq. 2). ``gamma_g`` weights the generator's adversarial
term (γ); ``gamma_d`` scales the critic's loss, as in the released tf-VAEGAN code (1 = the paper).

Released-code choices exposed as options (paper behaviour is the default):

* ``fake_noise``: ``prior`` — WGAN fakes from z ~ N(0, I) (paper); ``encoded`` — fakes decoded from the
  encoder's z (the released CUB/AWA/SUN scripts' ``--encoded_noise``);
* ``adaptive_gp``: tf-VAEGAN multiplies λ by 1.1 when the mean penalty exceeds 1.05 and divides by 1.1
  below 1.001 (off by default: the paper uses a fixed λ = 10).

tf-VAEGAN's feedback module and semantic decoder are not part of f-VAEGAN and are not used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from zsl_lightning.errors import ConfigError
from zsl_lightning.losses import (
    gaussian_kl,
    gradient_penalty,
    vae_bce_loss,
    wgan_critic_loss,
    wgan_generator_loss,
)
from zsl_lightning.methods.base import GenerativeZSLMethod
from zsl_lightning.nn.mlp import GaussianEncoder


class VAEGAN(GenerativeZSLMethod):
    """f-VAEGAN. Optimizers (return order): ``d`` (critic), ``e`` (encoder), ``g`` (generator).

    One step = ``n_critic`` critic updates (one batch each), then one joint encoder + generator
    update on the last batch: ``KL + BCE(G(z_E, a), x) + γ_G · (−D(x̃, a))``.
    """

    optimizer_roles = ("d", "e", "g")

    def __init__(
        self,
        encoder: GaussianEncoder,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_e: Callable,
        optimizer_g: Callable,
        optimizer_d: Callable,
        noise_dim: int,
        n_critic: int = 5,
        lambda_gp: float = 10.0,
        gamma_d: float = 1.0,
        gamma_g: float = 1.0,
        fake_noise: str = "prior",
        adaptive_gp: bool = False,
        **base,
    ):
        super().__init__(**base)
        if fake_noise not in ("prior", "encoded"):
            raise ConfigError(f"method.fake_noise must be prior | encoded, got '{fake_noise}'.")
        self.encoder, self.generator, self.discriminator = encoder, generator, discriminator
        self.noise_dim = int(noise_dim)
        if getattr(encoder, "latent_dim", self.noise_dim) != self.noise_dim:
            raise ConfigError("method.encoder.latent_dim must equal method.noise_dim (the generator's z).")
        self.n_critic, self.gamma_d, self.gamma_g = int(n_critic), float(gamma_d), float(gamma_g)
        self.fake_noise, self.adaptive_gp = fake_noise, bool(adaptive_gp)
        self.register_buffer("lambda_gp", torch.tensor(float(lambda_gp)))
        self.register_optimizer("d", optimizer_d, self.discriminator.parameters)
        self.register_optimizer("e", optimizer_e, self.encoder.parameters)
        self.register_optimizer("g", optimizer_g, self.generator.parameters)

    def _fake(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        if self.fake_noise == "encoded":
            mu, logvar = self.encoder(x, a)
            z = GaussianEncoder.sample(mu, logvar)
        else:
            z = self.sample_noise(len(a))
        return self.generator(z, a)

    def critic_loss(self, x, a, fake) -> tuple[torch.Tensor, dict]:
        """``γ_D · (E[D(x̃,a)] − E[D(x,a)] + λ GP)`` (f-VAEGAN Eq. 2, critic side)."""
        d_real, d_fake = self.discriminator(x, a), self.discriminator(fake, a)
        gp = gradient_penalty(self.discriminator, x, fake, a)
        loss = self.gamma_d * wgan_critic_loss(d_real, d_fake, gp, float(self.lambda_gp))
        return loss, {"wasserstein": (d_real.mean() - d_fake.mean()).detach(), "gp": gp.detach()}

    def vae_gan_loss(self, x, a) -> tuple[torch.Tensor, dict]:
        """Encoder + generator objective: ``KL + BCE(recon, x) + γ_G · (−E[D(x̃, a)])`` (f-VAEGAN Eq. 1-3)."""
        mu, logvar = self.encoder(x, a)
        z = GaussianEncoder.sample(mu, logvar)
        recon = self.generator(z, a)
        kl, bce = gaussian_kl(mu, logvar), vae_bce_loss(recon, x)
        fake = recon if self.fake_noise == "encoded" else self.generator(self.sample_noise(len(a)), a)
        adv = wgan_generator_loss(self.discriminator(fake, a))
        return kl + bce + self.gamma_g * adv, {"loss_kl": kl.detach(), "loss_recon": bce.detach(),
                                               "loss_adv": adv.detach()}

    def training_step(self, batch, batch_idx):
        x_all, y_all = batch["x"], batch["target"]
        emb = self.data.class_embeddings
        parts: dict = {}
        loss_d, infos = self.critic_updates(((x_all[i], emb[y_all[i]]) for i in range(x_all.shape[0])),
                                            self._fake, parts)
        if self.adaptive_gp:  # tf-VAEGAN: keep the mean gradient norm near 1
            gp_mean = torch.stack([info["gp"] for info in infos]).mean()
            if gp_mean > 1.05:
                self.lambda_gp.mul_(1.1)
            elif gp_mean < 1.001:
                self.lambda_gp.div_(1.1)
        x, a = x_all[-1], emb[y_all[-1]]
        loss_g = self.step_collecting(("e", "g"), lambda: self.vae_gan_loss(x, a), parts)
        self.log_losses({"loss_d": loss_d, "loss_g": loss_g, "lambda_gp": self.lambda_gp, **parts},
                        prog_bar=("loss_d", "loss_g"))
