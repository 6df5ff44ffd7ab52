"""f-CLSWGAN (Xian, Lorenz, Schiele, Akata, CVPR 2018): a conditional WGAN-GP whose generator is
also trained to make its features classifiable by a frozen, pre-trained seen-class classifier.

Paper numbering (Xian et al. 2018, Sec. 3.1; Eq. 1 is the conditional GAN loss of the f-GAN baseline):

* Eq. 2: ``L_WGAN = E[D(x, a)] − E[D(x̃, a)] − λ E[(‖∇_x̂ D(x̂, a)‖₂ − 1)²]``, ``x̃ = G(z, a)``;
* Eq. 3: ``L_CLS = −E_x̃[log P(y | x̃; θ)]``, θ a softmax classifier pre-trained on the seen classes, frozen;
* Eq. 4: ``min_G max_D  L_WGAN + β L_CLS``.

β is ``cls_weight``; λ is ``lambda_gp``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from zsl_lightning.errors import ConfigError
from zsl_lightning.eval.classifier import fit_softmax_classifier
from zsl_lightning.losses import gradient_penalty, wgan_critic_loss, wgan_generator_loss
from zsl_lightning.methods.base import GenerativeZSLMethod, freeze


class CLSWGAN(GenerativeZSLMethod):
    """f-CLSWGAN. Optimizers (return order): ``d`` (critic), ``g`` (generator).

    One training step = one generator iteration: ``n_critic`` critic updates, each on its own batch,
    then one generator update on the last batch (as in the released code).
    """

    optimizer_roles = ("d", "g")

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: Callable,
        optimizer_d: Callable,
        feature_dim: int,
        num_classes: int,
        noise_dim: int,
        n_critic: int = 5,
        lambda_gp: float = 10.0,
        cls_weight: float = 0.01,
        pretrain: Mapping | None = None,
        **base,
    ):
        super().__init__(**base)
        self.generator = generator
        self.discriminator = discriminator
        self.noise_dim = int(noise_dim)
        self.n_critic, self.lambda_gp, self.cls_weight = int(n_critic), float(lambda_gp), float(cls_weight)
        self.pretrain_cfg = {"epochs": 50, "lr": 1e-3, "beta1": 0.5, "batch_size": 100, "init": "normal",
                             "init_std": 0.02, **dict(pretrain or {})}
        if self.pretrain_cfg["init"] not in ("normal", "default"):
            raise ConfigError(f"method.pretrain.init must be normal | default, got '{self.pretrain_cfg['init']}'.")
        # The frozen seen-class classifier θ of L_CLS (Eq. 3). It has one row per class of the dataset; only the
        # rows of the current split's seen classes are trained and used (so its shape does not depend
        # on the split, and checkpoints of the dev and test phases load alike).
        self.seen_classifier = freeze(nn.Linear(int(feature_dim), int(num_classes)))
        self.register_buffer("classifier_ready", torch.tensor(False))
        self.register_optimizer("d", optimizer_d, self.discriminator.parameters)
        self.register_optimizer("g", optimizer_g, self.generator.parameters)

    # ---------------------------------------------------------------- setup
    def prepare(self, split) -> None:
        if bool(self.classifier_ready):
            return
        seen = split.seen_classes
        lookup = torch.full((self.seen_classifier.out_features,), -1, dtype=torch.long, device=seen.device)
        lookup[seen] = torch.arange(len(seen), device=seen.device)
        c = self.pretrain_cfg
        lin = fit_softmax_classifier(split.train_x, lookup[split.train_y], len(seen), epochs=c["epochs"], lr=c["lr"],
                                     betas=(c["beta1"], 0.999), batch_size=c["batch_size"],
                                     generator=torch.Generator().manual_seed(self.seed),
                                     init=c["init"], init_std=c["init_std"])
        with torch.no_grad():
            self.seen_classifier.weight.zero_()
            self.seen_classifier.bias.fill_(-1e4)  # rows of non-seen classes never win (they are not used)
            self.seen_classifier.weight[seen] = lin.weight
            self.seen_classifier.bias[seen] = lin.bias
        self.classifier_ready.fill_(True)

    def seen_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.seen_classifier(x)[:, self.data.seen_classes]

    def local_seen_labels(self, y: torch.Tensor) -> torch.Tensor:
        return torch.searchsorted(self.data.seen_classes, y)

    # ---------------------------------------------------------------- training
    def critic_loss(self, x: torch.Tensor, a: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Critic side of Eq. (4), ``max_D L_WGAN`` (Eq. 2) as a loss: ``E[D(x̃,a)] − E[D(x,a)] + λ GP``."""
        d_real = self.discriminator(x, a)
        d_fake = self.discriminator(fake, a)
        gp = gradient_penalty(self.discriminator, x, fake, a)
        loss = wgan_critic_loss(d_real, d_fake, gp, self.lambda_gp)
        return loss, {"wasserstein": (d_real.mean() - d_fake.mean()).detach(), "gp": gp.detach()}

    def generator_loss(self, y: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Generator side of Eq. (4): ``−E[D(x̃, a)] + β L_CLS`` with ``L_CLS`` (Eq. 3) = NLL of the frozen
        classifier on ``x̃``."""
        fake = self.generate(self.sample_noise(len(a)), a)
        adv = wgan_generator_loss(self.discriminator(fake, a))
        cls = F.cross_entropy(self.seen_logits(fake), self.local_seen_labels(y))
        return adv + self.cls_weight * cls, {"loss_adv": adv.detach(), "loss_cls": cls.detach()}

    def training_step(self, batch, batch_idx):
        x_all, y_all = batch["x"], batch["target"]
        emb = self.data.class_embeddings
        parts: dict = {}
        loss_d, _ = self.critic_updates(((x_all[i], emb[y_all[i]]) for i in range(x_all.shape[0])),
                                        lambda x, a: self.generate(self.sample_noise(len(a)), a), parts)
        y = y_all[-1]
        loss_g = self.step_collecting("g", lambda: self.generator_loss(y, emb[y]), parts)
        self.log_losses({"loss_d": loss_d, "loss_g": loss_g, **parts}, prog_bar=("loss_d", "loss_g"))
