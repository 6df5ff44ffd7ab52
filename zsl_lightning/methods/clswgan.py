"""f-CLSWGAN (Xian, Lorenz, Schiele, Akata, CVPR 2018): a conditional WGAN-GP whose generator is
also trained to make its features classifiable by a frozen, pre-trained seen-class classifier; in both label
modes (ML-f-CLSWGAN of Gupta et al. 2021 with the ALF / FLF / CLF generators of :mod:`zsl_lightning.nn.fusion`).

Paper numbering (Xian et al. 2018, Sec. 3.1; Eq. 1 is the conditional GAN loss of the f-GAN baseline):

* Eq. 2: ``L_WGAN = E[D(x, a)] − E[D(x̃, a)] − λ E[(‖∇_x̂ D(x̂, a)‖₂ − 1)²]``, ``x̃ = G(z, a)``;
* Eq. 3: ``L_CLS = −E_x̃[log P(y | x̃; θ)]``, θ a softmax classifier pre-trained on the seen classes, frozen;
* Eq. 4: ``min_G max_D  L_WGAN + β L_CLS``.

Multi-label (Gupta et al. Eqs. 6–7): ``min_G max_D L_W − α E[BCE(f_cls(x̃), y)]``: the critic is conditioned
on the mean label embedding e_µ, and L_CLS is the BCE of a seen multi-label classifier f_cls (one logit per
training label, unknown labels ignored while pre-training it), frozen.

β (α) is ``cls_weight``; λ is ``lambda_gp``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from zsl_lightning.errors import ConfigError
from zsl_lightning.losses import wgan_generator_loss
from zsl_lightning.methods.base import freeze
from zsl_lightning.methods.conditioning import Condition
from zsl_lightning.methods.wgan import WGANMethod

PRETRAIN_DEFAULTS = {"epochs": 50, "lr": 1e-3, "beta1": 0.5, "batch_size": 100, "init": "normal", "init_std": 0.02}


class CLSWGAN(WGANMethod):
    """f-CLSWGAN / ML-f-CLSWGAN. Optimizers (return order): ``d`` (critic), ``g`` (generator).

    One training step = one generator iteration: ``n_critic`` critic updates, each on its own batch,
    then one generator update on the last batch (as in the released code).
    """

    label_modes = ("single", "multi")
    optimizer_roles = ("d", "g")

    def __init__(self, feature_dim: int, cls_weight: float = 0.01, pretrain: Mapping | None = None, **kw):
        super().__init__(**kw)
        self.cls_weight, self.feature_dim = float(cls_weight), int(feature_dim)
        self.pretrain_cfg = {**PRETRAIN_DEFAULTS, **dict(pretrain or {})}
        if self.pretrain_cfg["init"] not in ("normal", "default"):
            raise ConfigError(f"method.pretrain.init must be normal | default, got '{self.pretrain_cfg['init']}'.")
        self.seen_classifier: nn.Linear | None = None
        self.register_buffer("classifier_ready", torch.tensor(False))

    def build_for_split(self, split) -> None:
        """θ of L_CLS (Eq. 3): single-label, one row per class of the dataset, of which the split's seen classes
        are trained and used (so its shape is the same in the dev and test phases); multi-label, f_cls of
        Eq. (7): one output per training label column of the split."""
        n = len(split.class_embeddings) if split.label_mode == "single" else len(split.train_cols)
        if self.seen_classifier is None or self.seen_classifier.out_features != n:
            self.seen_classifier = freeze(nn.Linear(self.feature_dim, n))

    def prepare(self, split) -> None:
        """Pre-train the frozen classifier on the real training features (once; a resumed run keeps it)."""
        if bool(self.classifier_ready):
            return
        lin, classes = self.fit_seen_classifier(split, self.pretrain_cfg)
        rows = classes if split.label_mode == "single" else torch.arange(len(classes), device=classes.device)
        with torch.no_grad():
            self.seen_classifier.weight.zero_()
            self.seen_classifier.bias.fill_(-1e4)  # rows of non-seen classes never win (they are not used)
            self.seen_classifier.weight[rows] = lin.weight
            self.seen_classifier.bias[rows] = lin.bias
        self.classifier_ready.fill_(True)

    def seen_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen classifier's logits over the split's training classes (labels)."""
        logits = self.seen_classifier(x.flatten(1))
        return logits[:, self.data.seen_classes] if self.data.label_mode == "single" else logits

    def seen_class_loss(self, fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """L_CLS: NLL of the frozen softmax classifier over the seen classes (Eq. 3), or the BCE of f_cls over
        the training labels (Gupta et al. Eq. 7), on the generated features."""
        if self.data.label_mode == "single":
            return F.cross_entropy(self.seen_logits(fake), torch.searchsorted(self.data.seen_classes, target))
        return F.binary_cross_entropy_with_logits(self.seen_logits(fake), (target > 0).float())

    def generator_loss(self, cond: Condition, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Generator side of Eq. (4) (Gupta et al. Eq. 7): ``−E[D(x̃, c)] + β L_CLS``."""
        fake = self.generate(self.sample_noise(len(cond)), cond)
        adv = wgan_generator_loss(self.discriminator(fake, cond.vector))
        cls = self.seen_class_loss(fake, target)
        return adv + self.cls_weight * cls, {"loss_adv": adv.detach(), "loss_cls": cls.detach()}

    def training_step(self, batch, batch_idx):
        parts: dict = {}
        loss_d, _, cond, target = self.critic_phase(batch, parts)
        loss_g = self.step_collecting("g", lambda: self.generator_loss(cond, target), parts)
        self.log_losses({"loss_d": loss_d, "loss_g": loss_g, **parts}, prog_bar=("loss_d", "loss_g"))
