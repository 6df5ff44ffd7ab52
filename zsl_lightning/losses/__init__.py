"""Loss functions, each naming the paper equation it implements."""

from zsl_lightning.losses.gan import gradient_penalty, wgan_critic_loss, wgan_generator_loss
from zsl_lightning.losses.gbe import gbe_loss
from zsl_lightning.losses.vae import gaussian_kl, vae_bce_loss

__all__ = ["gradient_penalty", "wgan_critic_loss", "wgan_generator_loss", "gaussian_kl", "vae_bce_loss",
           "gbe_loss"]
