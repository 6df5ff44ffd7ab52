"""Gao et al., *A Joint Generative Model for Zero-Shot Learning* (ECCV 2018 workshops): a conditional VAE and
a conditional GAN that share the generator, a categorizer with a "fake" class, and a perceptual loss.

Four networks (all MLPs with LeakyReLU): encoder E, generator/decoder G, discriminator D and categorizer C
(C_s + 1 outputs). With x_s a real seen feature, a_s its attributes, y_s its class:

* z_f ~ p_E(z | x_s, a_s) (Eq. 1), x_f = G(z_f, a_s) (Eq. 2); z_p ~ N(0, I), x_p = G(z_p, a_s);
* L_KL = KL(p_E(z | x_s, a_s) || N(0, I)) (Eq. 4); L_recon = −E[log p_G(x_s | z_f, a_s)] (Eq. 5);
* L_G = −log D(x_p) − log D(x_f) − log C(y_s | x_p) − log C(y_s | x_f) (Eq. 6);
* L_D = −log D(x_s) − log(1 − D(x_f)) − log(1 − D(x_p)) (Eq. 7), a standard (non-Wasserstein) GAN;
* L_C = −log C(y_s | x_s) − log C(fake | x_p) − log C(fake | x_f) (Eq. 8);
* L_percept = ||f_D(x_s) − f_D(x_f)||² + ||f_C(x_s) − f_C(x_f)||² on the last hidden layers (Eq. 9);
* updates (Eqs. 11–14): E ← L_KL + L_recon + β L_percept; G ← L_recon + α L_G + β L_percept;
  D ← L_D; C ← L_C, α = 0.01, β = 0.1.

Recognition (Sec. 3.3, Eq. 15): x = G(z_t, a_u), z_t ~ N(0, I); a softmax classifier on k × (number of
real unseen evaluation images) synthetic features (``syn_multiplier``), trained in batches of
``classifier_batch_size`` unless ``eval.classifier.batch_size`` is set. Choices the paper leaves open are
listed in ``docs/methods/jgm.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from zsl_lightning.errors import ConfigError
from zsl_lightning.eval.classifier import TensorSource, train_classifier
from zsl_lightning.losses.gan import standard_gan_discriminator_loss, standard_gan_generator_loss
from zsl_lightning.losses.jgm import categorizer_loss, perceptual_loss
from zsl_lightning.losses.vae import gaussian_kl, vae_bce_loss
from zsl_lightning.methods.generative import GenerativeZSLMethod
from zsl_lightning.nn.mlp import GaussianEncoder


class JGM(GenerativeZSLMethod):
    """Gao et al.'s joint generative model. Optimizers (return order): ``e``, ``g``, ``d``, ``c``.

    One training step = one batch = one manual update of each network, in the order of Eqs. (11)–(14):
    E, then G, then D, then C. Each step rebuilds its forward pass with the current weights (alternating
    updates); the encoder noise ε and the prior sample z_p are drawn once per batch and shared by the four
    steps. Ablations (Table 3) switch branches off: ``use_cvae`` (E, L_KL, L_recon, x_f), ``use_cgan``
    (D and its terms), ``use_categorizer`` (C and its terms), ``use_percept`` (Eq. 9).
    """

    def __init__(
        self,
        encoder: GaussianEncoder,
        generator: nn.Module,
        discriminator: nn.Module,
        categorizer: Callable[..., nn.Module],
        optimizer_e: Callable,
        optimizer_g: Callable,
        optimizer_d: Callable,
        optimizer_c: Callable,
        noise_dim: int,
        alpha: float = 0.01,
        beta: float = 0.1,
        use_cvae: bool = True,
        use_cgan: bool = True,
        use_categorizer: bool = True,
        use_percept: bool = True,
        recon_loss: str = "bce",
        recon_reduction: str = "sum",
        conditional_discriminator: bool = False,
        syn_multiplier: Mapping | None = None,
        pretrain_categorizer: Mapping | None = None,
        classifier_batch_size: int | None = 300,
        **base,
    ):
        super().__init__(noise_dim=noise_dim, **base)
        self._classifier_batch_size = None if classifier_batch_size is None else int(classifier_batch_size)
        if recon_loss not in ("bce", "mse"):
            raise ConfigError(f"method.recon_loss must be bce | mse, got '{recon_loss}'.")
        if recon_reduction not in ("sum", "mean"):
            raise ConfigError(f"method.recon_reduction must be sum | mean, got '{recon_reduction}'.")
        if not (use_cvae or use_cgan):
            raise ConfigError("jgm needs the CVAE or the CGAN branch (use_cvae / use_cgan); both are off.")
        if not (use_cvae or use_categorizer or use_cgan):
            raise ConfigError("jgm: every branch is switched off.")
        self.use_cvae, self.use_cgan = bool(use_cvae), bool(use_cgan)
        self.use_categorizer = bool(use_categorizer)
        # Eq. (9) compares x_f (the CVAE's reconstruction) with x_s: it needs the CVAE and D or C
        self.use_percept = bool(use_percept) and self.use_cvae and (self.use_cgan or self.use_categorizer)
        self.alpha, self.beta = float(alpha), float(beta)
        self.recon_loss, self.conditional_discriminator = recon_loss, bool(conditional_discriminator)
        self.recon_reduction = recon_reduction
        if getattr(encoder, "latent_dim", self.noise_dim) != self.noise_dim:
            raise ConfigError("method.encoder.latent_dim must equal method.noise_dim (d_z).")
        self.encoder, self.generator, self.discriminator = encoder, generator, discriminator
        self._make_categorizer = categorizer
        self.categorizer: nn.Module | None = None
        self.syn_multiplier = dict(syn_multiplier) if syn_multiplier else None
        self.pretrain_cfg = {"epochs": 10, "lr": 1e-3, "beta1": 0.5, "batch_size": 64,
                             **dict(pretrain_categorizer or {})}
        self.register_buffer("categorizer_ready", torch.tensor(False))
        self.register_optimizer("e", optimizer_e, self.encoder.parameters)
        self.register_optimizer("g", optimizer_g, self.generator.parameters)
        self.register_optimizer("d", optimizer_d, self.discriminator.parameters)
        self.register_optimizer("c", optimizer_c, lambda: self.categorizer.parameters())

    # ------------------------------------------------------------------------------------ setup
    def build_for_split(self, split) -> None:
        """C has C_s + 1 outputs for the split it is trained on: the seen classes, then the fake class."""
        n_out = len(split.seen_classes) + 1
        if self.categorizer is None or self.categorizer.out_dim != n_out:
            self.categorizer = self._make_categorizer(out_dim=n_out)

    @property
    def fake_class(self) -> int:
        return self.categorizer.out_dim - 1

    def prepare(self, split) -> None:
        """Sec. 4.2: pre-train the categorizer on the real seen features (over its C_s real classes)."""
        if bool(self.categorizer_ready) or not self.use_categorizer:
            return
        c = self.pretrain_cfg
        if int(c["epochs"]) > 0:
            train_classifier(self.categorizer, TensorSource(split.train_x, self.local_labels(split.train_y)),
                             loss="ce", epochs=int(c["epochs"]), lr=c["lr"], betas=(c["beta1"], 0.999),
                             batch_size=int(c["batch_size"]), generator=torch.Generator().manual_seed(self.seed))
        self.categorizer_ready.fill_(True)

    def local_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Global class ids → categorizer indices 0..C_s-1 (the split's seen classes are sorted)."""
        return torch.searchsorted(self.data.seen_classes, y)

    # ------------------------------------------------------------------------------------ synthesis size
    def classifier_batch_size(self) -> int:
        """JGM sizes its synthetic set by ``syn_multiplier``, not ``eval.syn_num``: the final classifier's batch
        is ``eval.classifier.batch_size``, else ``method.classifier_batch_size`` (300), else ``syn_num``."""
        if self.eval_cfg.classifier.batch_size is None and self._classifier_batch_size is not None:
            return self._classifier_batch_size
        return super().classifier_batch_size()

    def num_synthetic(self, split, task: str) -> int:
        """Sec. 4.2: k × the number of real unseen evaluation images, spread over the unseen classes.

        Only the COUNT of the evaluation images is used (as the paper does), never their content; in the
        dev split it is the count of validation-unseen images."""
        if not self.syn_multiplier or self.syn_multiplier.get(task) is None:
            return super().num_synthetic(split, task)
        total = float(self.syn_multiplier[task]) * len(split.test_unseen_y)
        return max(1, math.ceil(total / len(split.unseen_classes)))

    # ------------------------------------------------------------------------------------ losses
    def _d(self, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Discriminator logit and last hidden layer; p_D(x) of Eq. (7) (conditioned on a if configured)."""
        return self.discriminator.forward_with_hidden(*((x, a) if self.conditional_discriminator else (x,)))

    def _forward(self, x, a, eps, z_p) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {"x_p": self.generator(z_p, a)}
        if self.use_cvae:
            mu, logvar = self.encoder(x, a)
            out["mu"], out["logvar"] = mu, logvar
            out["x_f"] = self.generator(mu + eps * torch.exp(0.5 * logvar), a)
        return out

    def _recon(self, x_f, x) -> torch.Tensor:
        """Eq. (5): −log p_G(x_s | z_f, a_s): Bernoulli (BCE, default) or Gaussian (squared error), summed over
        the feature dimensions (``recon_reduction: sum``) or averaged over them (``mean``: the sum / D)."""
        if self.recon_loss == "bce":
            loss = vae_bce_loss(x_f, x)
        else:
            loss = F.mse_loss(x_f, x, reduction="sum") / x.shape[0]
        return loss if self.recon_reduction == "sum" else loss / x.shape[1]

    def _percept(self, x, x_f, a) -> torch.Tensor:
        """Eq. (9) on the last hidden layers of D and C (the branches that are switched on)."""
        feats = []
        if self.use_cgan:
            feats.append((self._d(x, a)[1], self._d(x_f, a)[1]))
        if self.use_categorizer:
            feats.append((self.categorizer.forward_with_hidden(x)[1], self.categorizer.forward_with_hidden(x_f)[1]))
        return sum(perceptual_loss(r.detach(), f) for r, f in feats)

    def _encoder_raw(self, x, a, eps, z_p) -> dict[str, torch.Tensor]:
        o = self._forward(x, a, eps, z_p)
        raw = {"kl": gaussian_kl(o["mu"], o["logvar"]), "recon": self._recon(o["x_f"], x)}
        if self.use_percept:
            raw["percept"] = self._percept(x, o["x_f"], a)
        return raw

    def encoder_terms(self, x, a, eps, z_p) -> dict[str, torch.Tensor]:
        """The weighted terms of Eq. (11), in summation order: ``kl``, ``recon``, ``percept`` (β L_percept)."""
        return self._weighted(self._encoder_raw(x, a, eps, z_p))

    def encoder_loss(self, x, a, eps, z_p) -> tuple[torch.Tensor, dict]:
        """Eq. (11): ``L_KL + L_recon + β L_percept``."""
        raw = self._encoder_raw(x, a, eps, z_p)
        return _total(self._weighted(raw)), {f"loss_{k}": v.detach() for k, v in raw.items()}

    def _generator_raw(self, x, a, y_local, eps, z_p) -> dict[str, torch.Tensor]:
        o = self._forward(x, a, eps, z_p)
        fakes = [o["x_p"]] + ([o["x_f"]] if self.use_cvae else [])
        l_g = x.new_zeros(())
        for fake in fakes:
            if self.use_cgan:
                l_g = l_g + standard_gan_generator_loss(self._d(fake, a)[0])
            if self.use_categorizer:
                l_g = l_g + F.cross_entropy(self.categorizer(fake), y_local)
        raw = {"gan": l_g}
        if self.use_cvae:
            raw["recon"] = self._recon(o["x_f"], x)
            if self.use_percept:
                raw["percept"] = self._percept(x, o["x_f"], a)
        return raw

    def generator_terms(self, x, a, y_local, eps, z_p) -> dict[str, torch.Tensor]:
        """The weighted terms of Eq. (12), in summation order: ``gan`` (α L_G, Eq. 6), then with the CVAE
        ``recon`` (L_recon) and ``percept`` (β L_percept). ``scripts/jgm_grad_shares.py`` measures each
        term's share of G's gradient."""
        return self._weighted(self._generator_raw(x, a, y_local, eps, z_p))

    def generator_loss(self, x, a, y_local, eps, z_p) -> tuple[torch.Tensor, dict]:
        """Eq. (12): ``L_recon + α L_G + β L_percept`` with L_G of Eq. (6)."""
        raw = self._generator_raw(x, a, y_local, eps, z_p)
        return _total(self._weighted(raw)), {"loss_gan_g": raw["gan"].detach()}

    def _weighted(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """α on L_G (Eq. 12), β on L_percept (Eqs. 11-12); L_KL and L_recon unweighted."""
        weight = {"gan": self.alpha, "percept": self.beta}
        return {k: weight[k] * v if k in weight else v for k, v in raw.items()}

    def discriminator_loss(self, x, a, fakes) -> torch.Tensor:
        """Eq. (7): ``−log D(x_s) − Σ_fake log(1 − D(fake))`` (fakes detached)."""
        return standard_gan_discriminator_loss(self._d(x, a)[0], [self._d(f, a)[0] for f in fakes])

    def categorizer_loss(self, x, y_local, fakes) -> torch.Tensor:
        """Eq. (8): real images → their class, x_p and x_f → the fake class (index C_s)."""
        return categorizer_loss(self.categorizer(x), y_local, [self.categorizer(f) for f in fakes], self.fake_class)

    # ------------------------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx):
        x, y = batch["x"][0], batch["target"][0]
        a = self.data.class_embeddings[y]
        y_local = self.local_labels(y)
        eps = torch.randn(len(x), self.noise_dim, device=x.device)
        z_p = torch.randn(len(x), self.noise_dim, device=x.device)
        parts: dict = {}
        losses: dict = {}

        def keep(fn):
            def run():
                loss, info = fn()
                parts.update(info)
                return loss
            return run

        if self.use_cvae:
            losses["loss_e"] = self.manual_step("e", keep(lambda: self.encoder_loss(x, a, eps, z_p)))
        losses["loss_g"] = self.manual_step("g", keep(lambda: self.generator_loss(x, a, y_local, eps, z_p)))
        with torch.no_grad():
            o = self._forward(x, a, eps, z_p)
            fakes = [o["x_p"]] + ([o["x_f"]] if self.use_cvae else [])
        if self.use_cgan:
            losses["loss_d"] = self.manual_step("d", lambda: self.discriminator_loss(x, a, fakes))
        if self.use_categorizer:
            losses["loss_c"] = self.manual_step("c", lambda: self.categorizer_loss(x, y_local, fakes))
        self.log_losses({**losses, **parts}, prog_bar=("loss_g", "loss_d"))

    @property
    def optimizer_roles(self) -> tuple[str, ...]:
        """The optimizers of the branches that are switched on, in the order e, g, d, c."""
        active = {"e": self.use_cvae, "g": True, "d": self.use_cgan, "c": self.use_categorizer}
        return tuple(r for r in ("e", "g", "d", "c") if active[r])


def _total(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ terms, added left to right in the dict's order (the order fixes the float result)."""
    values = list(terms.values())
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total
