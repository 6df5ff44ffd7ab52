"""f-VAEGAN (inductive f-VAEGAN-D2 without D2; Xian, Sharma, Schiele, Akata, CVPR 2019), in both label modes
(ML-f-VAEGAN of Gupta et al. 2021, Sec. 3.2 and Fig. 3, with the ALF / FLF / CLF generators).

A conditional VAE (encoder E, decoder = generator G) and a conditional WGAN share G:
``L = L_VAE + γ L_WGAN`` with ``L_VAE = KL(q(z|x,c) || p(z)) − E_q[log p(x|z,c)]`` (f-VAEGAN Eq. 1)
and the WGAN-GP loss of f-CLSWGAN (f-VAEGAN Eq. 2). ``c`` is the class embedding ``a`` or, multi-label, the
mean label embedding e_µ for E and D while G sees the whole label set. ``gamma_g`` weights the generator's
adversarial term (γ); ``gamma_d`` scales the critic's loss, as in the released tf-VAEGAN code (1 = the paper).

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

from zsl_lightning.errors import ConfigError
from zsl_lightning.losses import gaussian_kl, vae_bce_loss, wgan_generator_loss
from zsl_lightning.methods.conditioning import Condition, as_condition
from zsl_lightning.methods.wgan import WGANMethod
from zsl_lightning.nn.mlp import GaussianEncoder


class VAEGAN(WGANMethod):
    """f-VAEGAN / ML-f-VAEGAN. Optimizers (return order): ``d`` (critic), ``e`` (encoder), ``g`` (generator).

    One step = ``n_critic`` critic updates (one batch each), then one joint encoder + generator
    update on the last batch: ``KL + BCE(G(z_E, c), x) + γ_G · (−D(x̃, c))``.
    """

    label_modes = ("single", "multi")
    optimizer_roles = ("d", "e", "g")

    def __init__(self, encoder: GaussianEncoder, optimizer_e: Callable, gamma_g: float = 1.0,
                 fake_noise: str = "prior", **kw):
        super().__init__(**kw)
        if fake_noise not in ("prior", "encoded"):
            raise ConfigError(f"method.fake_noise must be prior | encoded, got '{fake_noise}'.")
        if getattr(encoder, "latent_dim", self.noise_dim) != self.noise_dim:
            raise ConfigError("method.encoder.latent_dim must equal method.noise_dim (the generator's z).")
        self.encoder, self.gamma_g, self.fake_noise = encoder, float(gamma_g), fake_noise
        self.register_optimizer("e", optimizer_e, self.encoder.parameters)

    def encode(self, x: torch.Tensor, cond: Condition | torch.Tensor) -> torch.Tensor:
        """A sample of ``q(z | x, c)`` (reparameterised)."""
        return GaussianEncoder.sample(*self.encoder(x.flatten(1), as_condition(cond).vector))

    def make_fake(self, x: torch.Tensor, cond: Condition) -> torch.Tensor:
        z = self.encode(x, cond) if self.fake_noise == "encoded" else self.sample_noise(len(cond))
        return self.generate(z, cond)

    def vae_gan_loss(self, x: torch.Tensor, cond: Condition | torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Encoder + generator objective: ``KL + BCE(recon, x) + γ_G · (−E[D(x̃, c)])`` (f-VAEGAN Eqs. 1-3)."""
        cond = as_condition(cond)
        mu, logvar = self.encoder(x.flatten(1), cond.vector)
        recon = self.generate(GaussianEncoder.sample(mu, logvar), cond)
        kl, bce = gaussian_kl(mu, logvar), vae_bce_loss(recon, x.flatten(1))
        fake = recon if self.fake_noise == "encoded" else self.generate(self.sample_noise(len(cond)), cond)
        adv = wgan_generator_loss(self.discriminator(fake, cond.vector))
        return kl + bce + self.gamma_g * adv, {"loss_kl": kl.detach(), "loss_recon": bce.detach(),
                                               "loss_adv": adv.detach()}

    def training_step(self, batch, batch_idx):
        parts: dict = {}
        loss_d, x, cond, _ = self.critic_phase(batch, parts)
        loss_g = self.step_collecting(("e", "g"), lambda: self.vae_gan_loss(x, cond), parts)
        self.log_losses({"loss_d": loss_d, "loss_g": loss_g, **parts}, prog_bar=("loss_d", "loss_g"))
